"""Budgets for the CSV, Parquet, array and JSON files of artifact folders, checked before reading.

Every figure a reader trusts comes from the file's own metadata (a Parquet footer, an
``.npy`` header, a zip directory, the file's size) and is charged to a ``Budget`` before
anything of that size is allocated; text is decompressed through a stream that refuses
past its budget and past a line of ``Limits.max_line_bytes``.
"""

import bz2
import csv
import gzip
import io
import lzma
import os
import zipfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from .exceptions import CorruptBundle, IncompatibleBundle, OversizedBundle, UnsafeBundle
from .limits import Budget

# A header with more columns than this is refused before it is parsed: no table here needs
# more than a dozen, and each column costs the CSV parser a Python object per row.
MAX_CSV_COLUMNS = 1024
# Most entries an artifact or Spark folder may hold (Spark writes one file per partition).
MAX_FOLDER_ENTRIES = 10_000
# Most column chunks (row groups × columns) one Parquet file may have: each costs a read.
MAX_PARQUET_CHUNKS = 65_536
# What one decoded Parquet value may cost, by physical type; text is an object per value.
OBJECT_BYTES = 64
PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
# JSON becomes Python objects: a mapping entry of ~12 bytes of text is a dict slot, a str and an int.
JSON_EXPANSION = 16
STREAM_CHUNK_BYTES = 256 * 1024


def folder_budget(limits):
    """Return one ``Budget`` that every file of an artifacts folder is charged to."""
    return Budget(limits.max_bytes)


def refuse_links_outside(folder, *, max_entries=MAX_FOLDER_ENTRIES):
    """Refuse a folder holding a symlink that leads outside it (``UnsafeBundle``).

    Every entry under the folder is checked without following a link; a symlink whose target
    lies outside the folder's resolved path is refused, so is a folder of more than
    ``max_entries`` entries.
    """
    root = Path(folder).resolve()
    seen = 0
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*dirnames, *filenames):
            seen += 1
            if seen > max_entries:
                raise OversizedBundle(f"{root.name}/ holds more than {max_entries:,} files; nothing was read")
            entry = Path(current) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                relative = entry.relative_to(root)
                raise UnsafeBundle(f"{root.name}/{relative} links outside the folder; nothing was read")


def charge_npy(array, name, budget):
    """Charge a memory-mapped array's size (from its header) before it is copied."""
    budget.charge(array.nbytes, f"{name} ({' × '.join(map(str, array.shape)) or 'scalar'} {array.dtype})")
    return array


def charge_file(path, budget, *, expansion=1):
    """Charge ``expansion`` × a file's size before it is read whole."""
    budget.charge(path.stat().st_size * expansion, f"{path.name} as read")


# --- Parquet -------------------------------------------------------------------------------


def _parquet_file(path, read_dictionary=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(str(path), read_dictionary=read_dictionary)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptBundle(f"cannot read {Path(path).name} as Parquet: {exc}") from exc


def parquet_cost(parquet_file, name):
    """Return ``(rows, bytes)`` a Parquet file claims in its footer: what reading it may allocate.

    Each column chunk costs its values (the larger of its row group's rows and its own value
    count) times their decoded width, plus its pages' uncompressed size.
    """
    metadata = parquet_file.metadata
    chunks = metadata.num_row_groups * metadata.num_columns
    if chunks > MAX_PARQUET_CHUNKS:
        raise OversizedBundle(
            f"{name} has {metadata.num_row_groups:,} row groups × {metadata.num_columns:,} columns, "
            f"more than {MAX_PARQUET_CHUNKS:,} column chunks; nothing was read"
        )
    rows = cost = 0
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        if group.num_rows < 0:
            raise CorruptBundle(f"{name}: row group {group_index} claims {group.num_rows} rows")
        rows += group.num_rows
        for column_index in range(group.num_columns):
            column = group.column(column_index)
            values = max(group.num_rows, column.num_values)
            width = PARQUET_WIDTHS.get(column.physical_type, OBJECT_BYTES)
            if column.physical_type == "FIXED_LEN_BYTE_ARRAY":
                width = OBJECT_BYTES + max(parquet_file.schema.column(column_index).length, 0)
            cost += values * width + max(column.total_uncompressed_size, 0)
    if rows != metadata.num_rows:
        raise CorruptBundle(
            f"{name}: its row groups hold {rows:,} rows, its footer says {metadata.num_rows:,}"
        )
    return rows, cost


def read_parquet_table(path, budget, *, columns=None):
    """Return a pyarrow Table of a Parquet file (or folder of part files) read within ``budget``.

    The footers are charged first (``parquet_cost``); text columns are read dictionary-encoded,
    and their longest value is charged per row before they are decoded, so a short dictionary
    entry repeated or one huge entry cannot expand unseen.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path)
    parts = _parquet_parts(path)
    tables = []
    for part in parts:
        parquet_file = _parquet_file(part)
        _, cost = parquet_cost(parquet_file, part.name)
        budget.charge(cost, f"{part.name} as its footer describes it")
        schema = parquet_file.schema_arrow
        text = [
            field.name
            for field in schema
            if pa.types.is_string(field.type)
            or pa.types.is_large_string(field.type)
            or pa.types.is_binary(field.type)
            or pa.types.is_large_binary(field.type)
        ]
        try:
            table = _parquet_file(part, text or None).read(columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise CorruptBundle(f"cannot read {part.name} as Parquet: {exc}") from exc
        for index, field in enumerate(table.schema):
            if not pa.types.is_dictionary(field.type):
                continue
            chunked = table.column(index)
            longest = 0
            for chunk in chunked.chunks:
                if len(chunk.dictionary):
                    longest = max(longest, pc.max(pc.binary_length(chunk.dictionary)).as_py() or 0)
            # Decoded as text, then as fixed-width ids: an object and four bytes a character per row.
            budget.charge(len(chunked) * (OBJECT_BYTES + 4 * longest), f"{part.name}: column {field.name}")
            table = table.set_column(index, field.name, chunked.cast(field.type.value_type))
        tables.append(table)
    if not tables:
        raise CorruptBundle(f"{path.name} holds no Parquet part files")
    try:
        return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except pa.ArrowException as exc:
        raise CorruptBundle(f"{path.name}: its part files disagree: {exc}") from exc


def _parquet_parts(path):
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CorruptBundle(f"{path.name} is not a Parquet file or folder")
    parts: list[Path] = []
    for entry in sorted(path.iterdir()):
        if len(parts) >= MAX_FOLDER_ENTRIES:
            raise OversizedBundle(
                f"{path.name}/ holds more than {MAX_FOLDER_ENTRIES:,} files; nothing was read"
            )
        if entry.is_file() and not entry.name.startswith(("_", ".")):
            parts.append(entry)
    return parts


def read_parquet_frame(path, budget):
    """Return a Parquet file as a pandas DataFrame, read within ``budget``."""
    return read_parquet_table(path, budget).to_pandas()


# --- CSV -----------------------------------------------------------------------------------


class CappedStream(io.RawIOBase):
    """Decompressed bytes of a file, refused past a budget and past any line of ``max_line_bytes``.

    A refusal inside ``read`` is kept in ``error``: pandas' C parser replaces the exceptions
    of the files it reads with its own message, so the caller re-raises this one.
    """

    def __init__(self, inner, budget, *, max_line_bytes, name):
        self.inner = inner
        self.budget = budget
        self.max_line_bytes = max_line_bytes
        self.name = name
        self.line_bytes = 0  # bytes since the last newline
        self.bytes_read = 0
        self.error = None
        self.pending = b""

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size=-1):
        if self.pending:
            size = len(self.pending) if size is None or size < 0 else size
            data, self.pending = self.pending[:size], self.pending[size:]
            return data
        size = STREAM_CHUNK_BYTES if size is None or size < 0 else min(size, STREAM_CHUNK_BYTES)
        try:
            data = self.inner.read(size)
            self._check(data)
        except OversizedBundle as exc:
            self.error = exc
            raise
        except (OSError, EOFError, ValueError, lzma.LZMAError, zipfile.BadZipFile) as exc:
            self.error = CorruptBundle(f"cannot read {self.name}: {exc}")
            raise self.error from exc
        return data

    def _check(self, data):
        self.budget.charge(len(data), f"{self.name} decompressed")
        self.bytes_read += len(data)
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        if not len(newlines):
            self.line_bytes += len(data)
            longest = self.line_bytes
        else:
            gaps = np.diff(newlines, prepend=-1)
            longest = max(self.line_bytes + int(newlines[0]), int(gaps[1:].max(initial=0)))
            self.line_bytes = len(data) - int(newlines[-1]) - 1
            longest = max(longest, self.line_bytes)
        if longest > self.max_line_bytes:
            raise OversizedBundle(
                f"{self.name} has a line of more than {self.max_line_bytes:,} bytes; it was not parsed"
            )

    def first_lines(self, count=2):
        """Return the first ``count`` lines (each at most ``max_line_bytes``), kept to be read again."""
        data = self.pending
        self.pending = b""
        while data.count(b"\n") < count:
            chunk = self.read(STREAM_CHUNK_BYTES)
            if not chunk:
                break
            data += chunk
        self.pending = data
        return data.split(b"\n", count)[:count]


MAGICS = {"gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zX", "zip": b"PK\x03\x04"}
SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}


def _decompressing(raw, name):
    """Return ``(binary file of the text, compressed?)``: compression from the first bytes, as named."""
    head = raw.read(4)
    raw.seek(0)
    found = next((how for how, magic in MAGICS.items() if head.startswith(magic)), None)
    named = SUFFIXES.get(Path(str(name)).suffix.lower())
    if named is not None and found != named:
        raise CorruptBundle(f"{name} is not a {named} file")
    if found == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb"), True  # every member, as gzip reads them
    if found == "bz2":
        return bz2.BZ2File(raw), True
    if found == "xz":
        return lzma.LZMAFile(raw), True
    if found == "zip":
        try:
            archive = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as exc:
            raise CorruptBundle(f"cannot read {name} as a zip file: {exc}") from exc
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise IncompatibleBundle(f"{name} holds {len(members)} files; a zipped CSV holds exactly one")
        return archive.open(members[0]), True
    return raw, False


@contextmanager
def csv_stream(source, limits, *, name=None, budget=None):
    """Yield a ``CappedStream`` of a CSV file (path or binary file object), decompressed as needed.

    The decompressed text may be at most ``limits.for_file(size, compressed=...)`` bytes,
    charged to ``budget`` when given; no line may pass ``limits.max_line_bytes``.
    """
    with ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            raw = stack.enter_context(open(source, "rb"))
            name = name or Path(source).name
        else:
            raw = source
            raw.seek(0)
        size = _size_of(raw)
        inner, compressed = _decompressing(raw, name)
        if budget is None:
            budget = Budget(limits.for_file(size, compressed=compressed))
        yield CappedStream(inner, budget, max_line_bytes=limits.max_line_bytes, name=name)


def _size_of(raw):
    position = raw.tell()
    size = raw.seek(0, io.SEEK_END)
    raw.seek(position)
    return size


def _fields(line):
    # A UTF-8 byte order mark is not part of the first name, as pandas reads it.
    return next(csv.reader([line.decode("utf-8-sig", "replace")]), [])


def csv_columns(stream, *, max_columns=MAX_CSV_COLUMNS):
    """Return the header's column names, refusing more than ``max_columns`` before parsing them.

    The first data row may not have more fields than the header either: pandas would take the
    extra ones as a many-level index, which costs minutes for a few hundred thousand.
    """
    header, *rows = stream.first_lines(2)
    # A comma inside quotes is not a separator: counting every comma can only overestimate.
    if header.count(b",") + 1 > max_columns and len(_fields(header)) > max_columns:
        raise OversizedBundle(
            f"{stream.name} has {len(_fields(header)):,} columns, more than {max_columns:,}; it was not parsed"
        )
    names = [name.strip() for name in _fields(header)]
    if rows and rows[0].count(b",") + 1 > len(names):
        try:
            width = len(_fields(rows[0]))
        except csv.Error:  # a quoted field spanning lines: the parser itself decides
            width = 0
        if width > len(names):
            raise CorruptBundle(
                f"{stream.name}: its first row has {width:,} fields, its header {len(names):,} columns"
            )
    return names


def read_csv_frame(source, limits, *, name=None, budget=None, **read_csv):
    """Return ``pandas.read_csv`` of a CSV file read through ``csv_stream`` within ``limits``.

    The whole text is first streamed through the checks (header, columns, size, line length)
    and dropped, in constant memory; only a file that passes them is parsed, and the parse may
    read no more than the check did. A refusal is raised as itself, not as the parser's message.
    """
    with csv_stream(source, limits, name=name, budget=budget) as stream:
        csv_columns(stream)
        while stream.read(STREAM_CHUNK_BYTES):
            pass
        checked = stream.bytes_read
    import pandas as pd  # only for a file that passed

    with csv_stream(source, limits, name=name, budget=Budget(checked)) as stream:
        try:
            return pd.read_csv(io.BufferedReader(stream, STREAM_CHUNK_BYTES), compression=None, **read_csv)
        except Exception:
            if stream.error is not None:
                raise stream.error from None
            raise
