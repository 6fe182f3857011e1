"""Hostile artifact folders, Spark model folders and training CSVs: what the readers must refuse.

Each artifact kind turns a good seed-layout folder into a hostile one; each Spark kind writes a
saved-ALSModel folder; each CSV kind writes a transactions file. All are small on disk and
claim (or expand to) far more than the 8 MiB budget the door tests set, or lead outside their
folder to ``outside`` (a folder beside them holding a file the reader must never open).
"""

import gzip
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse

from tests import factories

ALS_CLASS = "org.apache.spark.ml.recommendation.ALSModel"
DEFLATE_CHUNK = 1024 * 1024


# --- artifact folders ---------------------------------------------------------------------


def _recs_table(rows, *, customer_id, item_id="I000"):
    return pa.table(
        {
            "customer_id": customer_id,
            "item_id": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(rows, np.int32)), pa.array([item_id])
            ),
            "score": pa.array(np.zeros(rows, np.float32)),
            "rank": pa.array(np.ones(rows, np.int32)),
        }
    )


def _repeated(rows, value):
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), pa.array([value]))


def parquet_rows(folder, outside):
    """2,000,000 rows of one repeated pair: a few KB of run-length encoding."""
    pq.write_table(
        _recs_table(2_000_000, customer_id=_repeated(2_000_000, "C0000")), folder / "recommendations.parquet"
    )


def parquet_row_groups(folder, outside):
    """17,000 row groups of one row each: 68,000 column chunks."""
    rows = 17_000
    table = _recs_table(rows, customer_id=_repeated(rows, "C0000"))
    pq.write_table(table, folder / "recommendations.parquet", row_group_size=1)


def parquet_dictionary_value(folder, outside):
    """One 64 KiB customer id in the dictionary, named by 2,000 rows: 128 MiB once decoded."""
    rows = 2_000
    pq.write_table(
        _recs_table(rows, customer_id=_repeated(rows, "C" * 65536)), folder / "recommendations.parquet"
    )


def parquet_long_values(folder, outside):
    """Eight 2 MiB ids stored plainly and compressed: 16 MiB of pages in a few KB."""
    ids = pa.array(["I" * (2 * 1024 * 1024)] * 8)
    table = pa.table({"customer_id": ids, "item_id": ids, "score": pa.array(np.zeros(8, np.float32))})
    pq.write_table(table, folder / "recommendations.parquet", use_dictionary=False, compression="zstd")


def npy_sparse_file(folder, outside):
    """user_factors.npy announcing 256 MiB and holding it as a sparse file (no disk used)."""
    path = folder / "user_factors.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 64)}
    with open(path, "wb") as out:
        np.lib.format.write_array_header_1_0(out, header)
        out.truncate(out.tell() + (1 << 20) * 64 * 4)


def npy_claims_more_than_held(folder, outside):
    """user_factors.npy announcing 10¹² floats in a file of a few bytes."""
    path = folder / "user_factors.npy"
    with open(path, "wb") as out:
        np.lib.format.write_array_header_1_0(
            out, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
        )
        out.write(bytes(64))


def npz_member_expands(folder, outside):
    """interactions.npz whose data member expands to 32 MiB from a few KB."""
    matrix = scipy.sparse.csr_matrix(
        (
            np.zeros(8 * 1024 * 1024, np.float32),
            np.zeros(8 * 1024 * 1024, np.int32),
            np.array([0, 8 * 1024 * 1024]),
        ),
        shape=(1, 1),
    )
    scipy.sparse.save_npz(folder / "interactions.npz", matrix, compressed=True)


def json_mapping_large(folder, outside):
    """customer_mapping.json of 1 MiB: millions of Python objects once parsed."""
    (folder / "customer_mapping.pkl").unlink()
    entries = ", ".join(f'"C{n:07d}": {n}' for n in range(1024 * 1024 // 16))
    (folder / "customer_mapping.json").write_text("{" + entries + "}")


def _recs_csv(folder, text):
    (folder / "recommendations.parquet").unlink()
    (folder / "recommendations.csv").write_bytes(text)


def csv_recs_long_line(folder, outside):
    _recs_csv(folder, b"customer_id,item_id,score\n" + b"C0000,I000," + b"1" * (2 * 1024 * 1024) + b"\n")


def csv_recs_wide_header(folder, outside):
    _recs_csv(folder, b"a," * 300_000 + b"a\n1\n")


def csv_recs_quoted_field(folder, outside):
    """One quoted customer id of 9.7 MB spanning 120,000 short lines."""
    _recs_csv(folder, b'customer_id,item_id,score\n"' + (b"x" * 80 + b"\n") * 120_000 + b'",I000,1\n')


def link_file_out(folder, outside):
    """user_factors.npy is a link to a file outside the folder (of the right shape)."""
    (folder / "user_factors.npy").rename(outside / "user_factors.npy")
    (folder / "user_factors.npy").symlink_to(outside / "user_factors.npy")


def link_folder_out(folder, outside):
    (folder / "extra").symlink_to(outside, target_is_directory=True)


def link_nested_out(folder, outside):
    (folder / "sub").mkdir()
    (folder / "sub" / "notes.json").symlink_to(outside / "user_factors.npy")


def cb_features_dense(folder, outside):
    """item_features.npz of 131,072 × 1,024 with no values: 512 MiB once densified."""
    (folder / "item_embeddings.npy").unlink()
    rows = 1 << 17
    matrix = scipy.sparse.csr_matrix((rows, 1024), dtype=np.float32)
    scipy.sparse.save_npz(folder / "item_features.npz", matrix, compressed=True)


ARTIFACT_KINDS = {
    "parquet_rows": ("cf", parquet_rows),
    "parquet_row_groups": ("cf", parquet_row_groups),
    "parquet_dictionary_value": ("cf", parquet_dictionary_value),
    "parquet_long_values": ("cf", parquet_long_values),
    "npy_sparse_file": ("cf", npy_sparse_file),
    "npy_claims_more_than_held": ("cf", npy_claims_more_than_held),
    "npz_member_expands": ("cf", npz_member_expands),
    "json_mapping_large": ("cf", json_mapping_large),
    "csv_recs_long_line": ("cf", csv_recs_long_line),
    "csv_recs_wide_header": ("cf", csv_recs_wide_header),
    "csv_recs_quoted_field": ("cf", csv_recs_quoted_field),
    "link_file_out": ("cf", link_file_out),
    "link_folder_out": ("cf", link_folder_out),
    "link_nested_out": ("cf", link_nested_out),
    "cb_features_dense": ("cb", cb_features_dense),
}
LINK_KINDS = {"link_file_out", "link_folder_out", "link_nested_out"}


def hostile_folder(kind, folder, outside):
    """Write the good folder of the kind's type at ``folder``, then make it hostile; return (type, path)."""
    folder_kind, make = ARTIFACT_KINDS[kind]
    outside.mkdir(parents=True, exist_ok=True)
    writer = factories.write_cf_folder if folder_kind == "cf" else factories.write_cb_folder
    writer(folder)
    make(Path(folder), Path(outside))
    return folder_kind, Path(folder)


# --- Spark model folders --------------------------------------------------------------------


def spark_metadata(folder, **fields):
    (folder / "metadata").mkdir(parents=True)
    (folder / "metadata" / "part-00000").write_text(
        json.dumps({"class": ALS_CLASS, "sparkVersion": "4.3.0", **fields})
    )


def factors_folder(folder, n, rank):
    folder.mkdir(parents=True)
    flat = pa.array(np.zeros(n * rank, np.float32))
    features = pa.FixedSizeListArray.from_arrays(flat, rank).cast(pa.list_(pa.float32()))
    table = pa.table({"id": pa.array(np.arange(n, dtype=np.int32)), "features": features})
    pq.write_table(table, folder / "part-00000.snappy.parquet")


def spark_many_items(folder, outside):
    """4,096 users × 40,000 items of rank 2, all zeros: a few hundred KB, 655 MB of scores a batch."""
    spark_metadata(folder, rank=2)
    factors_folder(folder / "userFactors", 4096, 2)
    factors_folder(folder / "itemFactors", 40_000, 2)


def spark_link_out(folder, outside):
    """userFactors/ is a link to a folder of factors outside the model folder."""
    spark_metadata(folder, rank=2)
    factors_folder(outside / "userFactors", 5, 2)
    (folder / "userFactors").symlink_to(outside / "userFactors", target_is_directory=True)
    factors_folder(folder / "itemFactors", 4, 2)


def spark_metadata_line(folder, outside):
    """metadata/part-00000 is one line of 1 MiB."""
    spark_metadata(folder, rank=2, padding="x" * (1024 * 1024))
    factors_folder(folder / "userFactors", 5, 2)
    factors_folder(folder / "itemFactors", 4, 2)


def spark_rank_claim(folder, outside):
    """The metadata claims rank 10⁶ for factors of rank 2."""
    spark_metadata(folder, rank=10**6)
    factors_folder(folder / "userFactors", 5, 2)
    factors_folder(folder / "itemFactors", 4, 2)


SPARK_KINDS = {
    "spark_many_items": spark_many_items,
    "spark_link_out": spark_link_out,
    "spark_metadata_line": spark_metadata_line,
    "spark_rank_claim": spark_rank_claim,
}


def hostile_spark_folder(kind, folder, outside):
    """Write the Spark kind at ``folder`` (beside ``outside``); return its path."""
    outside.mkdir(parents=True, exist_ok=True)
    SPARK_KINDS[kind](Path(folder), Path(outside))
    return Path(folder)


# --- training CSVs --------------------------------------------------------------------------


def gzip_of_repeats(path, head, unit, total_bytes, tail=b""):
    """Write one gzip member: ``head``, ``unit`` repeated to ``total_bytes``, ``tail``; quickly.

    After a full flush, every further megabyte of the same periodic text compresses alike,
    so the compressed block is written again instead of compressing again.
    """
    chunk = unit * (DEFLATE_CHUNK // len(unit))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
        out.write(compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH))
        crc = zlib.crc32(head)
        first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
        repeated = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
        chunks = max(total_bytes // len(chunk), 2)
        out.write(first)
        crc = zlib.crc32(chunk, crc)
        for _ in range(chunks - 1):
            out.write(repeated)
            crc = zlib.crc32(chunk, crc)
        out.write(compressor.compress(tail) + compressor.flush())
        crc = zlib.crc32(tail, crc)
        size = len(head) + chunks * len(chunk) + len(tail)
        out.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return path


def header_bomb(path):
    """A 400 MB header line of one-letter columns in a ~400 KB .csv.gz."""
    return gzip_of_repeats(path, b"", b"a,", 400 * 1024 * 1024, b"customer_id,item_id\n1,2\n")


def wide_columns(path):
    """2,000,000 columns in a 17 MB header."""
    names = b",".join(b"c%07d" % n for n in range(2_000_000))
    path.write_bytes(names + b",customer_id,item_id\n")
    return path


def wide_short_header(path):
    """300,000 one-letter columns: a 600 KB header, under the line limit."""
    path.write_bytes(b"a," * 300_000 + b"customer_id,item_id\n1,2,3\n")
    return path


def gzip_members(path):
    """A valid header, then 200 gzip members of 1 MiB of rows each: 200 MiB from ~200 KB."""
    member = gzip.compress(b"c1,i1\n" * (DEFLATE_CHUNK // 6), 9)
    with open(path, "wb") as out:
        out.write(gzip.compress(b"customer_id,item_id\n"))
        for _ in range(200):
            out.write(member)
    return path


def quoted_field(path):
    """One quoted item id of 128 MiB spanning millions of short lines."""
    return gzip_of_repeats(path, b'customer_id,item_id\nc1,"', b"x" * 63 + b"\n", 128 * 1024 * 1024, b'"\n')


def long_data_line(path):
    path.write_bytes(b"customer_id,item_id\nc1," + b"i" * (2 * 1024 * 1024) + b"\n")
    return path


def wide_data_row(path):
    """A good header, then a row of 400,000 fields (800 KB)."""
    path.write_bytes(b"customer_id,item_id\n" + b"1," * 400_000 + b"1\n")
    return path


CSV_KINDS = {
    "header_bomb": ("events.csv.gz", header_bomb),
    "wide_columns": ("events.csv", wide_columns),
    "wide_short_header": ("events.csv", wide_short_header),
    "gzip_members": ("events.csv.gz", gzip_members),
    "quoted_field": ("events.csv.gz", quoted_field),
    "long_data_line": ("events.csv", long_data_line),
    "wide_data_row": ("events.csv", wide_data_row),
}
# Kinds refused from their first two lines: the training page refuses them as a form error.
CSV_HEADER_KINDS = {"header_bomb", "wide_columns", "wide_short_header", "long_data_line", "wide_data_row"}


def hostile_csv(kind, folder):
    """Write the CSV kind into ``folder``; return its path."""
    name, make = CSV_KINDS[kind]
    folder.mkdir(parents=True, exist_ok=True)
    return make(Path(folder) / name)
