"""Resource limits for reading untrusted files, and the reader that enforces them.

The limits are plain values passed in by the caller (the Django edge reads them from
settings), so this package stays free of Django.
"""

from dataclasses import dataclass

from .exceptions import OversizedBundle

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

    def for_file(self, size_bytes, *, compressed):
        """Return the byte budget of one file of ``size_bytes`` (compressed or not)."""
        if not compressed:
            return self.max_bytes
        by_ratio = max(self.max_compression_ratio * size_bytes, self.ratio_floor_bytes)
        return min(self.max_bytes, by_ratio)


DEFAULT_LIMITS = Limits()

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
    """Bytes one load may still read or allocate; ``charge`` refuses before the spending."""

    def __init__(self, limit):
        self.limit = int(limit)
        self.spent = 0

    def charge(self, size_bytes, what):
        """Count ``size_bytes`` against the budget, or raise ``OversizedBundle`` first."""
        size_bytes = int(size_bytes)
        if size_bytes < 0 or self.spent + size_bytes > self.limit:
            raise too_large(what, size_bytes, self)
        self.spent += size_bytes


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
            size = self.budget.limit - self.budget.spent + 1
        self.budget.charge(size, "a read")
        data = self.raw.read(size)
        self.budget.spent -= size - len(data)  # charge only what was really read
        return data

    def readline(self, size=-1):
        limit = self.max_line_bytes if size is None or size < 0 else min(size, self.max_line_bytes)
        line = self.raw.readline(limit)
        if len(line) >= limit and not line.endswith(b"\n"):
            raise too_large("a text line", len(line), self.budget)
        self.budget.charge(len(line), "a text line")
        return line

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self):
        return self.raw.tell()

    def seek(self, offset, whence=0):
        return self.raw.seek(offset, whence)
