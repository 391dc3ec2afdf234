"""``plugin-serdes``: conversions between Kestra's Ion files and CSV, JSON, Avro, Parquet, Excel.

Each task reads a stored file (``from``) and writes a new one (``outputs.<id>.uri``). Type names
are Kestra's, with the older aliases its ``@Plugin(aliases=...)`` keeps (``csv.CsvReader`` ...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import TaskBase

_S = "io.kestra.plugin.serdes"
CSV_TO_ION_TYPES = (f"{_S}.csv.CsvToIon", f"{_S}.csv.CsvReader")
ION_TO_CSV_TYPES = (f"{_S}.csv.IonToCsv", f"{_S}.csv.CsvWriter")
JSON_TO_ION_TYPES = (f"{_S}.json.JsonToIon", f"{_S}.json.JsonReader")
ION_TO_JSON_TYPES = (f"{_S}.json.IonToJson", f"{_S}.json.JsonWriter")
JSON_TO_JSONL_TYPES = (f"{_S}.json.JsonToJsonl",)
AVRO_TO_ION_TYPES = (f"{_S}.avro.AvroToIon", f"{_S}.avro.AvroReader")
ION_TO_AVRO_TYPES = (f"{_S}.avro.IonToAvro", f"{_S}.avro.AvroWriter")
PARQUET_TO_ION_TYPES = (f"{_S}.parquet.ParquetToIon", f"{_S}.parquet.ParquetReader")
ION_TO_PARQUET_TYPES = (f"{_S}.parquet.IonToParquet", f"{_S}.parquet.ParquetWriter")
EXCEL_TO_ION_TYPES = (f"{_S}.excel.ExcelToIon",)
ION_TO_EXCEL_TYPES = (f"{_S}.excel.IonToExcel",)
SERDES_TYPES = (
    CSV_TO_ION_TYPES
    + ION_TO_CSV_TYPES
    + JSON_TO_ION_TYPES
    + ION_TO_JSON_TYPES
    + JSON_TO_JSONL_TYPES
    + AVRO_TO_ION_TYPES
    + ION_TO_AVRO_TYPES
    + PARQUET_TO_ION_TYPES
    + ION_TO_PARQUET_TYPES
    + EXCEL_TO_ION_TYPES
    + ION_TO_EXCEL_TYPES
)

Flag = bool | str
OnBadLines = Literal["ERROR", "WARN", "SKIP"] | str


class SerdesTask(TaskBase):
    """A conversion: the stored file ``from`` into a new stored file."""

    from_: str = Field(alias="from")
    charset: str = "UTF-8"


class TextWriter(SerdesTask):
    """Kestra's ``AbstractTextWriter``: how dates and times are printed."""

    dateFormat: str = "yyyy-MM-dd"
    timeFormat: str = "HH:mm:ss[XXX]"
    dateTimeFormat: str = "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"
    timeZoneId: str | None = None


class CsvToIon(SerdesTask):
    type: Literal[CSV_TO_ION_TYPES]  # type: ignore[valid-type]
    header: Flag = True
    fieldSeparator: str = ","
    textDelimiter: str = '"'
    skipEmptyRows: Flag = False
    skipRows: int | str = 0
    onBadLines: OnBadLines = "ERROR"
    errorOnDifferentFieldCount: Flag | None = None  # deprecated: onBadLines
    maxBufferSize: int | str | None = None
    maxFieldSize: int | str | None = None
    allowExtraCharsAfterClosingQuote: Flag = False


class IonToCsv(TextWriter):
    type: Literal[ION_TO_CSV_TYPES]  # type: ignore[valid-type]
    header: Flag = True
    fieldSeparator: str = ","
    textDelimiter: str = '"'
    lineDelimiter: str = "\n"
    alwaysDelimitText: Flag = False
    quoteMode: Literal["ALWAYS", "REQUIRED", "NON_NUMERIC"] | str | None = None


class JsonToIon(SerdesTask):
    type: Literal[JSON_TO_ION_TYPES]  # type: ignore[valid-type]
    newLine: Flag = True


class IonToJson(SerdesTask):
    type: Literal[ION_TO_JSON_TYPES]  # type: ignore[valid-type]
    newLine: Flag = True
    timeZoneId: str | None = None


class JsonToJsonl(SerdesTask):
    type: Literal[JSON_TO_JSONL_TYPES]  # type: ignore[valid-type]


class AvroConverter(SerdesTask):
    """Kestra's ``AbstractAvroConverter``: the schema and how text values are read."""

    schema_: str | dict[str, Any] | None = Field(default=None, alias="schema")
    numberOfRowsToScan: int | str = 100
    trueValues: list[str] | None = None
    falseValues: list[str] | None = None
    nullValues: list[str] | None = None
    dateFormat: str | None = None
    timeFormat: str | None = None
    datetimeFormat: str | None = None
    decimalSeparator: str = "."
    strictSchema: Flag = False
    inferAllFields: Flag = False
    timeZoneId: str | None = None
    onBadLines: OnBadLines = "ERROR"


class IonToAvro(AvroConverter):
    type: Literal[ION_TO_AVRO_TYPES]  # type: ignore[valid-type]


class IonToParquet(AvroConverter):
    type: Literal[ION_TO_PARQUET_TYPES]  # type: ignore[valid-type]
    compressionCodec: Literal["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"] | str = "GZIP"
    parquetVersion: Literal["V1", "V2"] | str = "V2"
    rowGroupSize: int | str | None = None
    pageSize: int | str | None = None
    dictionaryPageSize: int | str | None = None


class AvroToIon(SerdesTask):
    type: Literal[AVRO_TO_ION_TYPES]  # type: ignore[valid-type]


class ParquetToIon(SerdesTask):
    type: Literal[PARQUET_TO_ION_TYPES]  # type: ignore[valid-type]


class ExcelToIon(SerdesTask):
    type: Literal[EXCEL_TO_ION_TYPES]  # type: ignore[valid-type]
    sheetsTitle: list[str] | None = None
    valueRender: Literal["FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"] | str = (
        "UNFORMATTED_VALUE"
    )
    dateTimeRender: Literal["SERIAL_NUMBER", "FORMATTED_STRING", "UNFORMATTED_VALUE"] | str = (
        "UNFORMATTED_VALUE"
    )
    header: Flag = True
    skipEmptyRows: Flag = False
    skipRows: int | str = 0


class IonToExcel(TextWriter):
    type: Literal[ION_TO_EXCEL_TYPES]  # type: ignore[valid-type]
    from_: str | dict[str, str] = Field(alias="from")  # type: ignore[assignment]
    sheetsTitle: str = "Sheet"
    header: Flag = True
    styles: Flag = True


SERDES_TASKS = (
    CsvToIon,
    IonToCsv,
    JsonToIon,
    IonToJson,
    JsonToJsonl,
    IonToAvro,
    IonToParquet,
    AvroToIon,
    ParquetToIon,
    ExcelToIon,
    IonToExcel,
)
