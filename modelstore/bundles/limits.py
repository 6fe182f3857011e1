"""Resource limits for reading untrusted files, and the reader that enforces them.

The limits are plain values passed in by the caller (the Django edge reads them from
settings), so this package stays free of Django.
"""

import bz2
import lzma
import zlib
from dataclasses import dataclass

from .exceptions import CorruptBundle, OversizedBundle

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Limits:
    """How much one file may make the loader read, allocate and nest."""

    # Most bytes a file may expand to and make the loader allocate (arrays, strings, objects).
    max_bytes: int = 4 * GIB
    # A compressed file may expand to at most this many times its own size ...
    max_compression_ratio: int = 50
    # ... or to this many bytes, whichever is larger (small bundles compress very well).
    ratio_floor_bytes: int = 64 * MIB
    # Deepest nesting of lists, tuples, dicts and sets, and of pickle MARKs.
    max_depth: int = 100
    # Longest line a text opcode may read.
    max_line_bytes: int = MIB
    # What the file's own values make (copies, containers, conversions) may be at most this
    # many times the bytes read so far, or this floor, whichever is larger: a value reused
    # through the pickle memo is charged each time it is used, not once.
    max_made_ratio: int = 64
    made_floor_bytes: int = 64 * MIB
    # Most keys of one dict or set that may share a hash (more make every insert a long scan).
    max_equal_hashes: int = 8

    def for_file(self, size_bytes, *, compressed):
        """Return the byte budget of one file of ``size_bytes`` (compressed or not)."""
        if not compressed:
            return self.max_bytes
        by_ratio = max(self.max_compression_ratio * size_bytes, self.ratio_floor_bytes)
        return min(self.max_bytes, by_ratio)


DEFAULT_LIMITS = Limits()

READ_CHUNK_BYTES = 16 * MIB

# What each pickle opcode is charged: roughly the memory of the object it may create.
OPCODE_COST_BYTES = 64


def too_large(what, size_bytes, budget):
    """Return the error for something over the byte budget."""
    return OversizedBundle(
        f"refused to load: {what} of {size_bytes:,} bytes would pass the budget of {budget.limit:,} bytes "
        f"for this file ({budget.spent:,} already used; HYBRIDREC_MAX_BUNDLE_BYTES, "
        "HYBRIDREC_MAX_COMPRESSION_RATIO); it was not read or allocated"
    )


class Budget:
    """Bytes one load may still read or allocate; ``charge`` refuses before the spending.

    With ``made_ratio``, ``charge_made`` also keeps what the load makes from values it already
    holds within ``made_ratio`` times the bytes read (``read_bytes``), or ``made_floor_bytes``.
    """

    def __init__(self, limit, *, made_ratio=None, made_floor_bytes=0):
        self.limit = int(limit)
        self.spent = 0
        self.read_bytes = 0
        self.made_bytes = 0
        self.made_ratio = made_ratio
        self.made_floor_bytes = made_floor_bytes

    def charge(self, size_bytes, what):
        """Count ``size_bytes`` against the budget, or raise ``OversizedBundle`` first."""
        size_bytes = int(size_bytes)
        if size_bytes < 0 or self.spent + size_bytes > self.limit:
            raise too_large(what, size_bytes, self)
        self.spent += size_bytes

    def charge_made(self, size_bytes, what):
        """Count ``size_bytes`` that values already read will make, or raise ``OversizedBundle`` first."""
        size_bytes = int(size_bytes)
        if self.made_ratio is not None:
            allowed = max(self.made_ratio * self.read_bytes, self.made_floor_bytes)
            if size_bytes < 0 or self.made_bytes + size_bytes > allowed:
                raise OversizedBundle(
                    f"refused to load: {what} would make {size_bytes:,} bytes from values already "
                    f"read, past {allowed:,} bytes ({self.made_ratio} times the {self.read_bytes:,} "
                    f"bytes read, {self.made_bytes:,} already made); it was not made"
                )
        self.charge(size_bytes, what)
        self.made_bytes += size_bytes

    def made_room(self):
        """Return the bytes ``charge_made`` would still accept."""
        room = self.limit - self.spent
        if self.made_ratio is not None:
            allowed = max(self.made_ratio * self.read_bytes, self.made_floor_bytes)
            room = min(room, allowed - self.made_bytes)
        return max(room, 0)


class BoundedReader:
    """A read-only file wrapper that charges every read to a budget before it happens.

    Reading a decompressing file object through it stops a bomb at the budget instead of
    at the end of the stream; a length an opcode merely claims is refused before the read.
    """

    def __init__(self, raw, budget, *, max_line_bytes, name=""):
        self.raw = raw
        self.budget = budget
        self.max_line_bytes = max_line_bytes
        self.name = name

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.budget.limit - self.budget.spent  # "the rest", as far as the budget goes
        self.budget.charge(size, "a read")
        if size <= READ_CHUNK_BYTES:
            data = self.raw.read(size)
        else:  # in chunks: a length the file merely claims never becomes one big buffer
            chunks, left = [], size
            while left and (chunk := self.raw.read(min(left, READ_CHUNK_BYTES))):
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
        self.budget.spent -= size - len(data)  # charge only what was really read
        self.budget.read_bytes += len(data)
        return data

    def readline(self, size=-1):
        limit = self.max_line_bytes if size is None or size < 0 else min(size, self.max_line_bytes)
        line = self.raw.readline(limit)
        if len(line) >= limit and not line.endswith(b"\n"):
            raise too_large("a text line", len(line), self.budget)
        self.budget.charge(len(line), "a text line")
        self.budget.read_bytes += len(line)
        return line

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self):
        return self.raw.tell()

    def seek(self, offset, whence=0):
        return self.raw.seek(offset, whence)


class _Zlib:
    """zlib's decompressor with the ``needs_input`` interface of the lzma, bz2 and lz4 ones."""

    def __init__(self, wbits):
        self._decompressor = zlib.decompressobj(wbits)
        self._tail = b""

    def decompress(self, data, max_length):
        out = self._decompressor.decompress(self._tail + data, max_length)
        self._tail = self._decompressor.unconsumed_tail
        return out

    @property
    def needs_input(self):
        return not self._tail

    @property
    def eof(self):
        return self._decompressor.eof

    @property
    def unused_data(self):
        return self._decompressor.unused_data


def decompressor_for(head):
    """Return a fresh decompressor for a file starting with ``head``, or None when it is not compressed."""
    if head.startswith(b"\x1f\x8b"):
        return _Zlib(31)
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return _Zlib(15)
    if head.startswith(b"\xfd7zXZ"):
        return lzma.LZMADecompressor()
    if head.startswith(b"BZh"):
        return bz2.BZ2Decompressor()
    if head.startswith(b"\x04\x22\x4d\x18"):
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor()
    return None


class DecompressingReader:
    """Read one compressed stream, decompressing only as much as each read asks for.

    One stream only: data after its end is refused (joblib's own reader loops forever on it).
    """

    CHUNK_BYTES = 256 * 1024

    def __init__(self, raw, decompressor):
        self.raw = raw
        self.decompressor = decompressor
        self.buffer = b""
        self.position = 0
        self.done = False

    def _available(self):
        return len(self.buffer) - self.position

    def read(self, size=-1):
        if size is None or size < 0:
            while not self.done:
                self._more(self.CHUNK_BYTES)
            size = self._available()
        while self._available() < size and not self.done:
            self._more(max(size - self._available(), self.CHUNK_BYTES))
        data = self.buffer[self.position : self.position + size]
        self.position += len(data)
        return data

    def readline(self, size=-1):
        while not self.done and self.buffer.find(b"\n", self.position) < 0:
            if size is not None and 0 <= size <= self._available():
                break
            self._more(self.CHUNK_BYTES)
        end = self.buffer.find(b"\n", self.position) + 1 or len(self.buffer)
        if size is not None and size >= 0:
            end = min(end, self.position + size)
        line = self.buffer[self.position : end]
        self.position = end
        return line

    def _more(self, max_length):
        decompressor = self.decompressor
        if decompressor.eof:
            if decompressor.unused_data or self.raw.read(1):
                raise CorruptBundle("the file has data after the end of its compressed stream")
            self.done = True
            return
        data = b""
        if decompressor.needs_input:
            data = self.raw.read(self.CHUNK_BYTES)
            if not data:
                raise CorruptBundle("the compressed stream ends early (the file is truncated)")
        self.buffer = self.buffer[self.position :] + decompressor.decompress(data, max_length)
        self.position = 0
