"""``plugin-serdes`` on the host: Ion to and from CSV, JSON(L), Avro, Parquet and Excel.

Rows stream from the source file to the new one (Avro, Parquet in row groups, Excel in
write-only mode), so memory stays bounded by one row or one row group; JSON that is not
newline-delimited (``newLine: false``) is read whole, as Kestra does.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import IO, Any

from executor.errors import ExecutorError
from executor.flow.tasks_serdes import (
    AvroConverter,
    AvroToIon,
    CsvToIon,
    ExcelToIon,
    IonToAvro,
    IonToCsv,
    IonToExcel,
    IonToJson,
    IonToParquet,
    JsonToIon,
    JsonToJsonl,
    ParquetToIon,
    SerdesTask,
    TextWriter,
)
from executor.model import Level, State
from executor.run import ion
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.bounds import need, plain
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt

ROW_GROUP = 10_000  # rows per Parquet row group and per Avro inference window


# ----- files in and out


def _open(job: HostJob, uri: str) -> IO[bytes]:
    try:
        return job.artifacts().open(uri)
    except ExecutorError as exc:
        raise TaskInputError(exc.message) from None


def _codec(job: HostJob, task: SerdesTask) -> str:
    name = job.text(task.charset).strip() or "UTF-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise TaskInputError(f"'charset' {name!r} is not a known character set") from None


def _save(job: HostJob, extension: str, chunks: Iterable[bytes]) -> str:
    prefix = job.store_prefix()
    name = f"{job.task.id}{extension}"
    job.artifacts().write(prefix, name, chunks)
    return job.artifacts().uri(prefix, name)


def _rows(fh: IO[bytes], source: str) -> Iterator[Any]:
    try:
        yield from ion.read_rows(fh)
    except ion.IonError as exc:
        raise TaskInputError(f"{source} is not an Ion file: {exc}") from None


def _char(job: HostJob, value: str, name: str) -> str:
    text = job.text(value)
    if text == "\\t":
        text = "\t"
    if len(text) != 1:
        raise TaskInputError(f"'{name}' must be one character, got {text!r}")
    return text


def _done(job: HostJob, count: int, uri: str, **more: Any) -> AttemptResult:
    job.log(Level.INFO, f"{count} record(s) converted")
    return AttemptResult(State.SUCCESS, outputs={"uri": uri, **more})


# ----- Java date patterns (Kestra's dateFormat & co.)

_JAVA = re.compile(r"'[^']*'|\[[^\]]*\]|yyyy|yy|MM|dd|HH|mm|ss|SSSSSS|SSS|XXX|.")


def java_format(value: date | time | datetime, pattern: str) -> str:
    """``value`` printed with a Java ``DateTimeFormatter`` pattern (the common letters)."""
    out = []
    for token in _JAVA.findall(pattern):
        if token.startswith("'"):
            out.append(token[1:-1] or "'")
        elif token.startswith("["):
            part = java_format(value, token[1:-1])
            if "XXX" not in token or getattr(value, "tzinfo", None) is not None:
                out.append(part)
        else:
            out.append(_field(value, token))
    return "".join(out)


def _field(value: Any, token: str) -> str:
    fields = {
        "yyyy": lambda v: f"{v.year:04d}",
        "yy": lambda v: f"{v.year % 100:02d}",
        "MM": lambda v: f"{v.month:02d}",
        "dd": lambda v: f"{v.day:02d}",
        "HH": lambda v: f"{v.hour:02d}",
        "mm": lambda v: f"{v.minute:02d}",
        "ss": lambda v: f"{v.second:02d}",
        "SSS": lambda v: f"{v.microsecond // 1000:03d}",
        "SSSSSS": lambda v: f"{v.microsecond:06d}",
        "XXX": _offset,
    }
    if token in fields:
        try:
            return str(fields[token](value))
        except AttributeError:
            return ""
    return token


def _offset(value: Any) -> str:
    offset = value.utcoffset() if getattr(value, "tzinfo", None) else None
    if offset is None:
        return ""
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _text_of(value: Any, task: TextWriter) -> str | None:
    """A cell as Kestra's AbstractTextWriter prints it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        shown = value.astimezone(UTC) if value.tzinfo else value
        return java_format(shown, task.dateTimeFormat)
    if isinstance(value, date):
        return java_format(value, task.dateFormat)
    if isinstance(value, time):
        return java_format(value, task.timeFormat)
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(plain(value))
    return str(value)


# ----- CSV


def _csv_to_ion(task: CsvToIon, job: HostJob) -> AttemptResult:
    source = job.text(task.from_).strip()
    header = job.flag(task.header, "header", True)
    skip_rows = job.integer(task.skipRows, "skipRows") or 0
    skip_empty = job.flag(task.skipEmptyRows, "skipEmptyRows")
    on_bad = job.text(task.onBadLines).strip().upper()
    if task.errorOnDifferentFieldCount is not None and not job.flag(
        task.errorOnDifferentFieldCount, "errorOnDifferentFieldCount"
    ):
        on_bad = "SKIP"
    delimiter = _char(job, task.fieldSeparator, "fieldSeparator")
    quote = _char(job, task.textDelimiter, "textDelimiter")
    count = 0

    def records() -> Iterator[Any]:
        nonlocal count
        with _open(job, source) as fh:
            text = io.TextIOWrapper(fh, encoding=_codec(job, task), newline="")
            reader = csv.reader(text, delimiter=delimiter, quotechar=quote, strict=False)
            names: list[str] | None = None
            skipped = 0
            for fields in reader:
                if not fields and skip_empty:
                    continue
                if header and names is None:
                    names = fields
                    continue
                if skipped < skip_rows:
                    skipped += 1
                    continue
                values = [None if f == "\\N" else f for f in fields]
                if names is None:
                    count += 1
                    yield values
                    continue
                if len(values) != len(names):
                    message = (
                        f"line {reader.line_num}: expected {len(names)} fields, got {len(values)}"
                    )
                    if on_bad == "ERROR":
                        raise TaskInputError(f"bad line in {source}: {message}")
                    if on_bad == "WARN":
                        job.log(Level.WARN, f"bad line skipped: {message}")
                    continue
                count += 1
                yield dict(zip(names, values, strict=True))

    try:
        uri = _save(job, ".ion", ion.write_rows(records()))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TaskInputError(f"{source} is not {_codec(job, task)} CSV: {exc}") from None
    return _done(job, count, uri)


def _ion_to_csv(task: IonToCsv, job: HostJob) -> AttemptResult:
    source = job.text(task.from_).strip()
    header = job.flag(task.header, "header", True)
    mode = job.text(task.quoteMode).strip().upper() if task.quoteMode else None
    if mode is None and job.flag(task.alwaysDelimitText, "alwaysDelimitText"):
        mode = "ALWAYS"
    quoting = {"ALWAYS": csv.QUOTE_ALL, "NON_NUMERIC": csv.QUOTE_NONNUMERIC}.get(
        mode or "", csv.QUOTE_MINIMAL
    )
    encoding = _codec(job, task)
    count = 0
    options = {
        "delimiter": _char(job, task.fieldSeparator, "fieldSeparator"),
        "quotechar": _char(job, task.textDelimiter, "textDelimiter"),
        "lineterminator": job.text(task.lineDelimiter).replace("\\n", "\n").replace("\\r", "\r"),
        "quoting": quoting,
    }

    def lines() -> Iterator[bytes]:
        nonlocal count
        buffer = io.StringIO()
        writer = csv.writer(buffer, **options)  # type: ignore[arg-type]
        first = True
        with _open(job, source) as fh:
            for row in _rows(fh, source):
                if isinstance(row, dict):
                    if first and header:
                        writer.writerow(list(row))
                    cells = list(row.values())
                elif isinstance(row, list):
                    if header:
                        raise TaskInputError("Invalid data of type List with header")
                    cells = row
                else:
                    cells = [row]
                first = False
                texts = [_text_of(v, task) for v in cells]
                if quoting == csv.QUOTE_NONNUMERIC:
                    writer.writerow([_numeric(v, t) for v, t in zip(cells, texts, strict=True)])
                else:
                    writer.writerow(["" if t is None else t for t in texts])
                count += 1
                yield buffer.getvalue().encode(encoding)
                buffer.seek(0)
                buffer.truncate()

    uri = _save(job, ".csv", lines())
    return _done(job, count, uri)


def _numeric(value: Any, text: str | None) -> Any:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value) if not isinstance(value, int) else value
    return "" if text is None else text


# ----- JSON


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return plain(value)
    return str(value)


def _json_text(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _json_to_ion(task: JsonToIon, job: HostJob) -> AttemptResult:
    source = job.text(task.from_).strip()
    encoding = _codec(job, task)
    count = 0

    def values() -> Iterator[Any]:
        nonlocal count
        with _open(job, source) as fh:
            text = io.TextIOWrapper(fh, encoding=encoding)
            if job.flag(task.newLine, "newLine", True):
                for number, line in enumerate(text, 1):
                    if line.strip():
                        count += 1
                        yield _json_value(line, f"{source} line {number}")
                return
            whole = _json_value(text.read(), source)
            for value in whole if isinstance(whole, list) else [whole]:
                count += 1
                yield value

    uri = _save(job, ".ion", ion.write_rows(values()))
    return _done(job, count, uri)


def _json_value(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise TaskInputError(f"{where} is not JSON: {exc}") from None


def _ion_to_json(task: IonToJson, job: HostJob) -> AttemptResult:
    source = job.text(task.from_).strip()
    encoding = _codec(job, task)
    lines_mode = job.flag(task.newLine, "newLine", True)
    count = 0

    def chunks() -> Iterator[bytes]:
        nonlocal count
        with _open(job, source) as fh:
            if not lines_mode:
                yield b"["
            for row in _rows(fh, source):
                text = _json_text(row)
                if lines_mode:
                    yield (text + "\n").encode(encoding)
                else:
                    yield (("," if count else "") + text).encode(encoding)
                count += 1
            if not lines_mode:
                yield b"]"

    uri = _save(job, ".jsonl" if lines_mode else ".json", chunks())
    return _done(job, count, uri)


def _json_to_jsonl(task: JsonToJsonl, job: HostJob) -> AttemptResult:
    source = job.text(task.from_).strip()
    encoding = _codec(job, task)
    with _open(job, source) as fh:
        whole = _json_value(fh.read().decode(encoding), source)
    items = whole if isinstance(whole, list) else [whole]
    uri = _save(job, ".jsonl", ((_json_text(v) + "\n").encode(encoding) for v in items))
    return _done(job, len(items), uri)


# ----- Avro and Parquet


def _schema(task: AvroConverter, job: HostJob, sample: list[Any]) -> dict[str, Any]:
    if task.schema_ is not None:
        rendered = job.render(task.schema_)
        if isinstance(rendered, dict):
            return rendered
        try:
            parsed = json.loads(rendered)
        except ValueError as exc:
            raise TaskInputError(f"'schema' is not an Avro schema (JSON): {exc}") from None
        if not isinstance(parsed, dict):
            raise TaskInputError("'schema' must be an Avro record schema")
        return parsed
    return infer_schema(sample)


def infer_schema(rows: list[Any]) -> dict[str, Any]:
    """An Avro record schema from sample rows (every field nullable, as Kestra infers it)."""
    fields: dict[str, set[str]] = {}
    for row in rows:
        if not isinstance(row, dict):
            raise TaskInputError("Avro and Parquet need rows that are structs")
        for key, value in row.items():
            fields.setdefault(str(key), set()).add(_avro_type(value))
    out = []
    for name, kinds in fields.items():
        kinds.discard("null")
        if len(kinds) > 1:
            kinds = {"double"} if kinds <= {"long", "double"} else {"string"}
        chosen = kinds.pop() if kinds else "string"
        avro: Any = chosen
        if chosen == "timestamp":
            avro = {"type": "long", "logicalType": "timestamp-micros"}
        elif chosen == "date":
            avro = {"type": "int", "logicalType": "date"}
        out.append({"name": _avro_name(name), "type": ["null", avro], "default": None})
    return {"type": "record", "name": "Root", "fields": out}


def _avro_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float | Decimal):
        return "double"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    if isinstance(value, bytes):
        return "bytes"
    return "string"


def _avro_name(name: str) -> str:
    clean = re.sub(r"\W", "_", name)
    return clean if re.match(r"[A-Za-z_]", clean) else f"_{clean}"


def _avro_record(row: Any, schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row, list):
        row = {f["name"]: v for f, v in zip(schema["fields"], row, strict=False)}
    if not isinstance(row, dict):
        raise TaskInputError("Avro and Parquet need rows that are structs")
    record = {}
    for f in schema.get("fields", []):
        value = row.get(f["name"])
        if isinstance(value, Decimal):
            value = float(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if isinstance(value, dict | list) and _is_text(f["type"]):
            value = _json_text(value)
        elif value is not None and _is_text(f["type"]) and not isinstance(value, str):
            value = str(value)
        record[f["name"]] = value
    return record


def _is_text(kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    return "string" in kinds and not any(k not in ("null", "string") for k in kinds)


def _with_schema(
    task: AvroConverter, job: HostJob, source: str
) -> tuple[dict[str, Any], Iterator[Any]]:
    """The schema (given or inferred from the first rows) and every row, streamed."""
    fh = _open(job, source)
    rows = _rows(fh, source)
    window = job.integer(task.numberOfRowsToScan, "numberOfRowsToScan") or 100
    head: list[Any] = []
    if task.schema_ is None:
        for row in rows:
            head.append(row)
            if len(head) >= window:
                break
    schema = _schema(task, job, head)

    def all_rows() -> Iterator[Any]:
        with contextlib.closing(fh):
            yield from head
            yield from rows

    return schema, all_rows()


def _ion_to_avro(task: IonToAvro, job: HostJob) -> AttemptResult:
    fastavro = need("fastavro", "Avro conversion")
    source = job.text(task.from_).strip()
    schema, rows = _with_schema(task, job, source)
    try:
        parsed = fastavro.parse_schema(schema)
    except Exception as exc:
        raise TaskInputError(f"'schema' is not a valid Avro schema: {exc}") from None
    count = 0

    def records() -> Iterator[dict[str, Any]]:
        nonlocal count
        for row in rows:
            count += 1
            yield _avro_record(row, schema)

    buffer = _Pipe()
    try:
        uri = _save(job, ".avro", buffer.run(lambda out: fastavro.writer(out, parsed, records())))
    except (ValueError, TypeError) as exc:
        raise TaskInputError(f"row {count} does not fit the Avro schema: {exc}") from None
    return _done(job, count, uri)


def _avro_to_ion(task: AvroToIon, job: HostJob) -> AttemptResult:
    fastavro = need("fastavro", "Avro conversion")
    source = job.text(task.from_).strip()
    count = 0

    def rows() -> Iterator[Any]:
        nonlocal count
        with _open(job, source) as fh:
            try:
                for record in fastavro.reader(fh):
                    count += 1
                    yield record
            except (ValueError, EOFError) as exc:
                raise TaskInputError(f"{source} is not an Avro file: {exc}") from None

    uri = _save(job, ".ion", ion.write_rows(rows()))
    return _done(job, count, uri)


def _ion_to_parquet(task: IonToParquet, job: HostJob) -> AttemptResult:
    pa = need("pyarrow", "Parquet conversion")
    pq = need("pyarrow.parquet", "Parquet conversion")
    source = job.text(task.from_).strip()
    schema, rows = _with_schema(task, job, source)
    arrow_schema = pa.schema(
        [pa.field(f["name"], _arrow_type(pa, f["type"])) for f in schema["fields"]]
    )
    codec = job.text(task.compressionCodec).strip().upper()
    if codec not in ("UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"):
        raise TaskInputError("'compressionCodec' must be UNCOMPRESSED, SNAPPY, GZIP or ZSTD")
    version = "1.0" if job.text(task.parquetVersion).strip().upper() == "V1" else "2.6"
    group = job.integer(task.rowGroupSize, "rowGroupSize")
    count = 0

    def write(out: IO[bytes]) -> None:
        nonlocal count
        with pq.ParquetWriter(
            out,
            arrow_schema,
            compression="NONE" if codec == "UNCOMPRESSED" else codec,
            version=version,
            data_page_size=job.integer(task.pageSize, "pageSize"),
            dictionary_pagesize_limit=job.integer(task.dictionaryPageSize, "dictionaryPageSize"),
        ) as writer:
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append(_avro_record(row, schema))
                count += 1
                if len(batch) >= ROW_GROUP:
                    writer.write_table(pa.Table.from_pylist(batch, arrow_schema), group)
                    batch = []
            if batch or count == 0:
                writer.write_table(pa.Table.from_pylist(batch, arrow_schema), group)

    try:
        uri = _save(job, ".parquet", _Pipe().run(write))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TaskInputError(f"row near {count} does not fit the schema: {exc}") from None
    return _done(job, count, uri)


def _arrow_type(pa: Any, kind: Any) -> Any:
    kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k != "null"]
    chosen = kinds[0] if kinds else "string"
    if isinstance(chosen, dict):
        logical = chosen.get("logicalType")
        if logical in ("timestamp-micros", "timestamp-millis"):
            return pa.timestamp("us", tz="UTC")
        if logical == "date":
            return pa.date32()
        chosen = chosen.get("type", "string")
    return {
        "boolean": pa.bool_(),
        "int": pa.int32(),
        "long": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "bytes": pa.binary(),
    }.get(chosen, pa.string())


def _parquet_to_ion(task: ParquetToIon, job: HostJob) -> AttemptResult:
    pq = need("pyarrow.parquet", "Parquet conversion")
    pa = need("pyarrow", "Parquet conversion")
    source = job.text(task.from_).strip()
    count = 0

    def rows() -> Iterator[Any]:
        nonlocal count
        with _open(job, source) as fh:
            try:
                reader = pq.ParquetFile(fh)
                for batch in reader.iter_batches(batch_size=ROW_GROUP):
                    for row in batch.to_pylist():
                        count += 1
                        yield row
            except pa.ArrowException as exc:
                raise TaskInputError(f"{source} is not a Parquet file: {exc}") from None

    uri = _save(job, ".ion", ion.write_rows(rows()))
    return _done(job, count, uri)


class _Pipe:
    """Run a writer that wants a file object, handing its bytes on as they come."""

    def run(self, body: Any) -> Iterator[bytes]:
        import queue
        import threading

        chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

        class Out(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, data: Any) -> int:
                chunks.put(bytes(data))
                return len(data)

        def work() -> None:
            try:
                out = io.BufferedWriter(Out(), 1024 * 1024)
                body(out)
                out.flush()
                chunks.put(None)
            except BaseException as exc:  # handed to the reading side
                chunks.put(exc)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        while True:
            item = chunks.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                thread.join()
                raise item
            yield item
        thread.join()


# ----- Excel


def _excel_to_ion(task: ExcelToIon, job: HostJob) -> AttemptResult:
    openpyxl = need("openpyxl", "Excel conversion")
    source = job.text(task.from_).strip()
    header = job.flag(task.header, "header", True)
    skip_rows = job.integer(task.skipRows, "skipRows") or 0
    skip_empty = job.flag(task.skipEmptyRows, "skipEmptyRows")
    wanted = {job.text(t) for t in task.sheetsTitle} if task.sheetsTitle else None
    uris: dict[str, str] = {}
    total = 0
    with _open(job, source) as fh:
        try:
            book = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        except Exception as exc:
            raise TaskInputError(f"{source} is not an Excel (.xlsx) file: {exc}") from None
        try:
            for sheet in book.worksheets:
                if wanted is not None and sheet.title not in wanted:
                    continue
                rows = _sheet_rows(sheet, header, skip_rows, skip_empty)
                prefix = job.store_prefix()
                name = f"{job.task.id}-{_avro_name(sheet.title)}.ion"
                counted = _Counted(rows)
                job.artifacts().write(prefix, name, ion.write_rows(counted))
                uris[sheet.title] = job.artifacts().uri(prefix, name)
                total += counted.count
        finally:
            book.close()
    job.log(Level.INFO, f"{total} row(s) read from {len(uris)} sheet(s)")
    return AttemptResult(State.SUCCESS, outputs={"uris": uris, "size": total})


class _Counted:
    def __init__(self, rows: Iterator[Any]) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[Any]:
        for row in self.rows:
            self.count += 1
            yield row


def _sheet_rows(sheet: Any, header: bool, skip_rows: int, skip_empty: bool) -> Iterator[Any]:
    names: list[str] | None = None
    skipped = 0
    for cells in sheet.iter_rows(values_only=True):
        values = list(cells)
        if skipped < skip_rows:
            skipped += 1
            continue
        if skip_empty and all(v is None for v in values):
            continue
        if header and names is None:
            names = ["" if v is None else str(v) for v in values]
            continue
        if names is None:
            yield values
        else:
            yield {n: (values[i] if i < len(values) else None) for i, n in enumerate(names)}


def _ion_to_excel(task: IonToExcel, job: HostJob) -> AttemptResult:
    openpyxl = need("openpyxl", "Excel conversion")
    header = job.flag(task.header, "header", True)
    rendered = job.render(task.from_)
    if isinstance(rendered, str) and rendered.strip().startswith("{"):
        with contextlib.suppress(ValueError):
            rendered = json.loads(rendered)
    sheets = (
        {str(k): str(v).strip() for k, v in rendered.items()}
        if isinstance(rendered, dict)
        else {job.text(task.sheetsTitle): str(rendered).strip()}
    )
    book = openpyxl.Workbook(write_only=True)
    total = 0
    for title, source in sheets.items():
        sheet = book.create_sheet(title=title[:31])
        first = True
        with _open(job, source) as fh:
            for row in _rows(fh, source):
                if isinstance(row, dict):
                    if first and header:
                        sheet.append(list(row))
                    cells = list(row.values())
                elif isinstance(row, list):
                    if header:
                        raise TaskInputError("Invalid data of type List with header")
                    cells = row
                else:
                    cells = [row]
                first = False
                sheet.append([_excel_cell(v) for v in cells])
                total += 1
    uri = _save(job, ".xlsx", _Pipe().run(book.save))
    return _done(job, total, uri, size=total)


def _excel_cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)  # Excel has no time zones
    if isinstance(value, dict | list):
        return _json_text(value)
    if isinstance(value, bytes):
        return plain(value)
    if isinstance(value, str) and value.startswith("Formula:"):
        return "=" + value.removeprefix("Formula:")
    return value


csv_to_ion_attempt = host_attempt(_csv_to_ion)
ion_to_csv_attempt = host_attempt(_ion_to_csv)
json_to_ion_attempt = host_attempt(_json_to_ion)
ion_to_json_attempt = host_attempt(_ion_to_json)
json_to_jsonl_attempt = host_attempt(_json_to_jsonl)
ion_to_avro_attempt = host_attempt(_ion_to_avro)
avro_to_ion_attempt = host_attempt(_avro_to_ion)
ion_to_parquet_attempt = host_attempt(_ion_to_parquet)
parquet_to_ion_attempt = host_attempt(_parquet_to_ion)
excel_to_ion_attempt = host_attempt(_excel_to_ion)
ion_to_excel_attempt = host_attempt(_ion_to_excel)

SERDES_ATTEMPTS = {
    CsvToIon: csv_to_ion_attempt,
    IonToCsv: ion_to_csv_attempt,
    JsonToIon: json_to_ion_attempt,
    IonToJson: ion_to_json_attempt,
    JsonToJsonl: json_to_jsonl_attempt,
    IonToAvro: ion_to_avro_attempt,
    AvroToIon: avro_to_ion_attempt,
    IonToParquet: ion_to_parquet_attempt,
    ParquetToIon: parquet_to_ion_attempt,
    ExcelToIon: excel_to_ion_attempt,
    IonToExcel: ion_to_excel_attempt,
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in SERDES_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
