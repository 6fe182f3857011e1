"""Decompression bombs, written quickly: one deflate block of zeros, repeated."""

import pickle
import struct
import zlib

from .hostile import fragment, wrapper_header

CHUNK = 16 * 1024 * 1024


def _gzip(out, head, zero_bytes, tail):
    """Write a valid single-stream gzip file: ``head``, ``zero_bytes`` zeros, ``tail``."""
    assert zero_bytes % CHUNK == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(CHUNK)
    out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
    out.write(compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH))
    crc = zlib.crc32(head)
    # After a full flush with a window of zeros, every further chunk of zeros compresses alike.
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    out.write(first)
    chunks = zero_bytes // CHUNK
    for _ in range(chunks - 1):
        out.write(repeated)
    for _ in range(chunks):
        crc = zlib.crc32(zeros, crc)
    out.write(compressor.compress(tail) + compressor.flush())
    crc = zlib.crc32(tail, crc)
    size = len(head) + zero_bytes + len(tail)
    out.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))


def write_array_bomb(path, zero_bytes):
    """A gzip bundle whose one array announces and holds ``zero_bytes`` zero bytes."""
    with open(path, "wb") as out:
        write_array_bomb_to(out, zero_bytes)
    return path


def write_array_bomb_to(out, zero_bytes):
    """Write ``write_array_bomb``'s bytes to the binary file object ``out``."""
    head = (
        pickle.PROTO
        + b"\x04"
        + pickle.EMPTY_DICT
        + pickle.MARK
        + fragment("format")
        + fragment("hybridrec-bundle")
        + fragment("arrays")
        + wrapper_header((zero_bytes // 8,))
    )
    _gzip(out, head, zero_bytes, pickle.SETITEMS + pickle.STOP)


def write_bytes_bomb(path, zero_bytes):
    """A gzip pickle of a list of 16 MiB byte strings (no array header to refuse up front)."""
    head = pickle.PROTO + b"\x04" + pickle.EMPTY_LIST + pickle.MARK
    item = pickle.BINBYTES8 + struct.pack("<Q", CHUNK)
    # Every item is its opcode and length, then CHUNK zeros: write them as one stream.
    with open(path, "wb") as out:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        zeros = bytes(CHUNK)
        for i in range(zero_bytes // CHUNK):
            out.write(compressor.compress((head if i == 0 else b"") + item))
            out.write(compressor.compress(zeros))
        out.write(compressor.compress(pickle.APPENDS + pickle.STOP) + compressor.flush())
    return path
