"""A throwaway MariaDB for the tests: Debian's mariadb-server in a temporary directory.

``mariadb-install-db`` makes a data directory, ``mariadbd`` serves it on a free port of
127.0.0.1 (and a socket in the directory), a user with a password is created, and the server is
stopped by its pid (never by name) when the session ends. ``scripts/run-tests.sh`` installs the
package.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.helpers import until
from tests.integration.server_helpers import free_port


@dataclass(frozen=True)
class MariaDb:
    port: int
    user: str
    password: str
    database: str

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:mariadb://127.0.0.1:{self.port}/{self.database}"


@contextmanager
def mariadb_server() -> Iterator[MariaDb]:
    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd")
    assert install and server, "mariadb-server is missing: scripts/run-tests.sh installs it"
    import pymysql

    root = Path(tempfile.mkdtemp(prefix="executor-mariadb-"))
    data, sock, port = root / "data", root / "sock", free_port()
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            *user,
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            *user,
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            f"--pid-file={root / 'pid'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        until(lambda: sock.exists(), 60, lambda: (root / "server.log").read_text())
        admin = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
        with admin, admin.cursor() as cur:
            cur.execute("CREATE DATABASE shop")
            cur.execute("CREATE USER 'etl'@'%' IDENTIFIED BY 'maria-s3cret'")
            cur.execute("GRANT ALL ON shop.* TO 'etl'@'%'")
            cur.execute("GRANT PROCESS ON *.* TO 'etl'@'%'")
        yield MariaDb(port, "etl", "maria-s3cret", "shop")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        time.sleep(0)
        shutil.rmtree(root, ignore_errors=True)
