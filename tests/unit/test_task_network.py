"""The host's CA bundle and proxy, passed into task containers where the host has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import UsageError
from executor.task_network import CONTAINER_CA_BUNDLE, TaskNetwork


def test_the_pip_cert_setting_is_mounted_and_pointed_at(tmp_path: Path) -> None:
    """pip's `cert` in pip.conf is the bundle; pip, requests and OpenSSL are pointed at it."""
    bundle = tmp_path / "ca.crt"
    bundle.write_text("---CERT---")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\ncert = {bundle}\n")
    network = TaskNetwork.from_host({}, [conf])
    assert network.read_only_binds == {str(bundle): CONTAINER_CA_BUNDLE}
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        assert network.env[name] == CONTAINER_CA_BUNDLE


def test_nothing_is_passed_when_the_host_has_nothing_configured(tmp_path: Path) -> None:
    """No bundle and no proxy: containers get no mount and no variable."""
    network = TaskNetwork.from_host({}, [tmp_path / "missing.conf"])
    assert network.read_only_binds == {} and network.env == {}


def test_a_missing_bundle_file_is_not_mounted(tmp_path: Path) -> None:
    """A variable naming a file that does not exist is skipped."""
    network = TaskNetwork.from_host({"PIP_CERT": str(tmp_path / "gone.crt")}, [])
    assert network.ca_bundle is None


def test_proxy_variables_in_both_cases(tmp_path: Path) -> None:
    """HTTPS_PROXY/no_proxy from the host reach the container in both spellings."""
    network = TaskNetwork.from_host(
        {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost"}, []
    )
    assert network.env["HTTPS_PROXY"] == network.env["https_proxy"] == "http://proxy:3128"
    assert network.env["NO_PROXY"] == "localhost"


def test_settings_turn_them_off_or_name_another_bundle(tmp_path: Path) -> None:
    """EXECUTOR_TASK_PROXY=0 and EXECUTOR_TASK_CA_BUNDLE=none turn them off; a bad path fails."""
    bundle = tmp_path / "ca.crt"
    bundle.write_text("x")
    off = TaskNetwork.from_host(
        {
            "PIP_CERT": str(bundle),
            "EXECUTOR_TASK_CA_BUNDLE": "none",
            "HTTP_PROXY": "http://p",
            "EXECUTOR_TASK_PROXY": "0",
        },
        [],
    )
    assert off.env == {} and off.read_only_binds == {}
    chosen = TaskNetwork.from_host({"EXECUTOR_TASK_CA_BUNDLE": str(bundle)}, [])
    assert chosen.ca_bundle == str(bundle.resolve())
    with pytest.raises(UsageError, match="EXECUTOR_TASK_CA_BUNDLE"):
        TaskNetwork.from_host({"EXECUTOR_TASK_CA_BUNDLE": str(tmp_path / "nope")}, [])
