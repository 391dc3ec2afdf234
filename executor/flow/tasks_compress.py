"""``plugin-compress``: archives (zip, tar with a compressor) and single compressed files."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import TaskBase

_C = "io.kestra.plugin.compress"
ARCHIVE_COMPRESS_TYPES = (f"{_C}.ArchiveCompress",)
ARCHIVE_DECOMPRESS_TYPES = (f"{_C}.ArchiveDecompress",)
FILE_COMPRESS_TYPES = (f"{_C}.FileCompress",)
FILE_DECOMPRESS_TYPES = (f"{_C}.FileDecompress",)
COMPRESS_TYPES = (
    ARCHIVE_COMPRESS_TYPES + ARCHIVE_DECOMPRESS_TYPES + FILE_COMPRESS_TYPES + FILE_DECOMPRESS_TYPES
)

# Kestra's enums (commons-compress); those this executor cannot read or write fail when run.
ArchiveAlgorithm = Literal["AR", "ARJ", "CPIO", "DUMP", "JAR", "TAR", "ZIP"]
CompressionAlgorithm = Literal[
    "BROTLI",
    "BZIP2",
    "DEFLATE",
    "DEFLATE64",
    "GZIP",
    "LZ4BLOCK",
    "LZ4FRAME",
    "LZMA",
    "SNAPPY",
    "SNAPPYFRAME",
    "XZ",
    "Z",
    "ZSTD",
]


class ArchiveCompressTask(TaskBase):
    """``ArchiveCompress``: stored files (``from``: archive path → URI) into one archive."""

    type: Literal[ARCHIVE_COMPRESS_TYPES]  # type: ignore[valid-type]
    from_: dict[str, Any] | str = Field(alias="from")
    algorithm: ArchiveAlgorithm | str
    compression: CompressionAlgorithm | str | None = None


class ArchiveDecompressTask(TaskBase):
    """``ArchiveDecompress``: every file of an archive into the store (``outputs.<id>.files``)."""

    type: Literal[ARCHIVE_DECOMPRESS_TYPES]  # type: ignore[valid-type]
    from_: str = Field(alias="from")
    algorithm: ArchiveAlgorithm | str
    compression: CompressionAlgorithm | str | None = None


class FileCompressTask(TaskBase):
    """``FileCompress``: one stored file compressed (``outputs.<id>.uri``)."""

    type: Literal[FILE_COMPRESS_TYPES]  # type: ignore[valid-type]
    from_: str = Field(alias="from")
    compression: CompressionAlgorithm | str


class FileDecompressTask(TaskBase):
    """``FileDecompress``: one stored file decompressed (``outputs.<id>.uri``)."""

    type: Literal[FILE_DECOMPRESS_TYPES]  # type: ignore[valid-type]
    from_: str = Field(alias="from")
    compression: CompressionAlgorithm | str
