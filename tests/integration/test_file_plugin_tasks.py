"""serdes and compress tasks through ``executor run``: a CSV goes round every format and back,
archives unpack, and an archive whose member climbs out of its directory is refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.integration.helpers import cli
from tests.integration.host_flows import logs, run_json, state_of, task_run

pytestmark = pytest.mark.integration

ROUND_TRIP = """
id: formats
namespace: tests.serdes
tasks:
  - id: csv
    type: io.kestra.plugin.core.storage.Write
    extension: .csv
    content: |
      id;name;price
      1;apple;1.5
      2;"pear; green";\\N
  - id: ion
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{ outputs.csv.uri }}"
    fieldSeparator: ";"
  - id: jsonl
    type: io.kestra.plugin.serdes.json.IonToJson
    from: "{{ outputs.ion.uri }}"
  - id: from_json
    type: io.kestra.plugin.serdes.json.JsonToIon
    from: "{{ outputs.jsonl.uri }}"
  - id: avro
    type: io.kestra.plugin.serdes.avro.IonToAvro
    from: "{{ outputs.from_json.uri }}"
  - id: from_avro
    type: io.kestra.plugin.serdes.avro.AvroToIon
    from: "{{ outputs.avro.uri }}"
  - id: parquet
    type: io.kestra.plugin.serdes.parquet.IonToParquet
    from: "{{ outputs.from_avro.uri }}"
    compressionCodec: ZSTD
  - id: from_parquet
    type: io.kestra.plugin.serdes.parquet.ParquetToIon
    from: "{{ outputs.parquet.uri }}"
  - id: xlsx
    type: io.kestra.plugin.serdes.excel.IonToExcel
    from: "{{ outputs.from_parquet.uri }}"
    sheetsTitle: fruits
  - id: from_xlsx
    type: io.kestra.plugin.serdes.excel.ExcelToIon
    from: "{{ outputs.xlsx.uri }}"
  - id: back
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{ outputs.from_xlsx.uris.fruits }}"
  - id: tgz
    type: io.kestra.plugin.compress.ArchiveCompress
    algorithm: TAR
    compression: XZ
    from:
      data/back.csv: "{{ outputs.back.uri }}"
      data/raw.csv: "{{ outputs.csv.uri }}"
  - id: untgz
    type: io.kestra.plugin.compress.ArchiveDecompress
    algorithm: TAR
    compression: XZ
    from: "{{ outputs.tgz.uri }}"
  - id: zst
    type: io.kestra.plugin.compress.FileCompress
    compression: ZSTD
    from: "{{ outputs.untgz.files['data/back.csv'] }}"
  - id: unzst
    type: io.kestra.plugin.compress.FileDecompress
    compression: ZSTD
    from: "{{ outputs.zst.uri }}"
"""


def _get(home: Path, uri: str) -> str:
    dest = home / "fetched"
    proc = cli(home, "storage", "get", uri, str(dest))
    assert proc.returncode == 0, proc.stderr
    return dest.read_text()


def test_a_csv_goes_round_every_format_and_archive(home: Path, tmp_path: Path) -> None:
    proc, execution = run_json(home, tmp_path, ROUND_TRIP)
    assert proc.returncode == 0, proc.stderr + logs(home, execution)
    assert _get(home, task_run(execution, "ion")["outputs"]["uri"]).splitlines() == [
        '{id:"1",name:"apple",price:"1.5"}',
        '{id:"2",name:"pear; green",price:null}',
    ]
    assert sorted(task_run(execution, "untgz")["outputs"]["files"]) == [
        "data/back.csv",
        "data/raw.csv",
    ]
    assert _get(home, task_run(execution, "unzst")["outputs"]["uri"]).splitlines() == [
        "id,name,price",
        "1,apple,1.5",
        "2,pear; green,",
    ]


def test_an_archive_member_cannot_climb_out(home: Path, tmp_path: Path) -> None:
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        for name in ("ok.txt", "../../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    archive = tmp_path / "evil.tar"
    archive.write_bytes(evil.getvalue())
    flow = """
        id: unpack
        namespace: tests.compress
        inputs:
          - id: file
            type: FILE
        tasks:
          - id: untar
            type: io.kestra.plugin.compress.ArchiveDecompress
            algorithm: TAR
            from: "{{ inputs.file }}"
    """
    proc, execution = run_json(home, tmp_path, flow, "-i", f"file={archive}")
    assert proc.returncode == 1
    assert state_of(execution, "untar") == "FAILED"
    assert (
        "'../../escaped.txt' would land outside; refused" in task_run(execution, "untar")["reason"]
    )
    assert not list(home.rglob("escaped.txt"))
