"""The bundle format: writing, opening, verifying, seed layouts, and refusing hostile files."""

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest

from modelstore.bundles import (
    CorruptBundle,
    IncompatibleBundle,
    UnsafeBundle,
    content_hash,
    file_sha256,
    load_any,
    open_bundle,
    read_artifacts,
    read_metadata,
    verify_arrays,
    verify_bundle,
    write_bundle,
)
from tests import factories

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def cf_set():
    return factories.cf_array_set()


def test_written_bundle_opens_memory_mapped_with_the_same_arrays(tmp_path, cf_set):
    written = write_bundle(
        tmp_path / "cf.joblib", kind="cf", arrays=cf_set, metadata={"params": {"factors": 6}}
    )

    bundle = open_bundle(written.path, expected_sha256=written.sha256)

    assert bundle.kind == "cf" and bundle.memory_mapped
    assert isinstance(bundle.arrays["user_factors"], np.memmap)
    for name, array in cf_set.items():
        np.testing.assert_array_equal(bundle.arrays[name], array)
    assert bundle.metadata["params"] == {"factors": 6}
    assert bundle.metadata["counts"] == {
        "n_users": 60,
        "n_items": 25,
        "n_recommendations": 150,
        "n_factors": 6,
    }
    assert bundle.metadata["libraries"]["numpy"] == np.__version__
    assert written.sha256 == file_sha256(written.path)
    assert verify_bundle(bundle)["n_users"] == 60


@pytest.mark.parametrize("compress", ["zlib", "gzip:1", "lz4", "xz:3"])
def test_compressed_bundles_round_trip_in_memory(tmp_path, cf_set, compress):
    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=cf_set, compress=compress)

    bundle = open_bundle(written.path)

    assert bundle.compression == compress.split(":")[0]
    assert not bundle.memory_mapped
    verify_bundle(bundle)
    np.testing.assert_array_equal(bundle.arrays["recs_indices"], cf_set["recs_indices"])


def test_unknown_compression_is_refused_with_the_valid_choices(tmp_path, cf_set):
    with pytest.raises(ValueError, match="zstd.*none, zlib, gzip, lz4, xz"):
        write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=cf_set, compress="zstd")


def test_object_arrays_cannot_be_written(tmp_path):
    with pytest.raises(CorruptBundle, match="dtype object"):
        write_bundle(
            tmp_path / "x.joblib", kind="cb", arrays={"item_ids": np.array([{"a": 1}], dtype=object)}
        )


def test_a_failed_write_leaves_no_file(tmp_path, cf_set, monkeypatch):
    def explode(*args, **kwargs):
        (tmp_path / "partial").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", explode)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(tmp_path / "out" / "cf.joblib", kind="cf", arrays=cf_set)
    assert list((tmp_path / "out").iterdir()) == []


def test_changed_file_is_refused_by_hash(tmp_path, cf_set):
    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=cf_set)
    with open(written.path, "r+b") as handle:
        handle.seek(-10, 2)
        handle.write(b"\x00" * 10)
    with pytest.raises(CorruptBundle, match="changed after it was registered"):
        open_bundle(written.path, expected_sha256=written.sha256)


def test_repacked_arrays_fail_the_content_hash(tmp_path, cf_set):
    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=cf_set)
    document = joblib.load(written.path)
    document["arrays"]["user_factors"] = document["arrays"]["user_factors"] * 2
    joblib.dump(document, tmp_path / "repacked.joblib")

    with pytest.raises(CorruptBundle, match="re-packed"):
        verify_bundle(open_bundle(tmp_path / "repacked.joblib"))


def _bytes_read():
    with open("/proc/self/io") as io_counters:
        return next(int(line.split()[1]) for line in io_counters if line.startswith("rchar:"))


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_read_metadata_does_not_read_the_arrays_of_a_large_uncompressed_bundle(tmp_path):
    rng = np.random.default_rng(0)
    arrays = factories.cf_array_set(n_users=200_000, n_items=2_000, n_factors=64, recs_share=0.0)
    arrays["user_factors"] = rng.random((200_000, 64), dtype=np.float32)
    written = write_bundle(tmp_path / "big.joblib", kind="cf", arrays=arrays)
    assert written.size_bytes > 50_000_000
    del arrays

    # Bytes the process reads through read(2): opening the whole file would read all of it.
    read_before = _bytes_read()
    metadata = read_metadata(written.path)
    read_bytes = _bytes_read() - read_before

    assert metadata["counts"]["n_users"] == 200_000
    assert read_bytes < written.size_bytes // 100, f"{read_bytes:,} bytes read"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.__setitem__("user_factors", a["user_factors"][:-1]), "user_factors has 59 rows"),
        (lambda a: a["user_factors"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda a: a["recs_indices"].__setitem__(0, 999), "outside the 25 known items"),
        (lambda a: a.__setitem__("recs_indptr", a["recs_indptr"][::-1].copy()), "CSR"),
        (lambda a: a.pop("item_popularity"), "lacks arrays: item_popularity"),
        (lambda a: a.__setitem__("item_factors", a["item_factors"].astype(np.float64)), "float32"),
    ],
)
def test_verify_names_the_problem(cf_set, mutate, message):
    mutate(cf_set)
    with pytest.raises(CorruptBundle, match=message):
        verify_arrays("cf", cf_set)


def test_verify_refuses_duplicate_ids():
    parts = factories.cf_parts()
    parts["user_ids"][1] = parts["user_ids"][0]
    parts["recs"] = parts["recs"].iloc[0:0]
    with pytest.raises(CorruptBundle, match="not unique"):
        verify_arrays("cf", factories.cf_array_set(parts))


def test_verify_refuses_cb_vectors_that_are_not_normalised():
    arrays = factories.cb_array_set()
    arrays["item_vectors"] = arrays["item_vectors"] * 3
    with pytest.raises(CorruptBundle, match="L2-normalised"):
        verify_arrays("cb", arrays)


# --- the seed layout ------------------------------------------------------------------


@pytest.mark.parametrize("compress", [0, ("gzip", 3), ("zlib", 3), ("lz4", 3)])
def test_seed_bundle_converts_with_matching_counts(tmp_path, compress):
    parts = factories.cf_parts()
    path = factories.write_seed_bundle(tmp_path / "seed.joblib", parts, compress=compress)

    loaded = load_any(path)

    assert loaded.layout == "seed-bundle" and loaded.kind == "cf"
    counts = verify_arrays("cf", loaded.arrays)
    assert counts == {"n_users": 60, "n_items": 25, "n_recommendations": len(parts["recs"]), "n_factors": 6}
    expected = factories.cf_array_set(parts)
    for name in ("user_ids", "item_ids", "recs_indptr", "recs_indices", "user_factors"):
        np.testing.assert_array_equal(loaded.arrays[name], expected[name])
    assert loaded.metadata["source_metadata"]["n_factors"] == 6


@pytest.mark.parametrize("compress", [0, ("gzip", 3)])
def test_seed_bundle_with_object_columns_as_pandas_2_wrote_them_converts(tmp_path, compress):
    import pandas as pd

    parts = factories.cf_parts()
    with pd.option_context("future.infer_string", False):
        recs = parts["recs"]
        parts["recs"] = recs.assign(
            customer_id=recs["customer_id"].astype(object), item_id=recs["item_id"].astype(object)
        )
        assert parts["recs"]["customer_id"].dtype == object
        path = factories.write_seed_bundle(tmp_path / "seed.joblib", parts, compress=compress)
        folder = factories.write_cf_folder(tmp_path / "cf", parts, recs_format="pandas-pkl")

    for loaded in (load_any(path), read_artifacts(folder, "cf")):
        assert verify_arrays("cf", loaded.arrays)["n_recommendations"] == len(parts["recs"])


def test_seed_bundle_with_integer_customer_ids(tmp_path):
    parts = factories.cf_parts(n_users=10, n_items=5)
    ids = [12346 + i for i in range(10)]
    parts["recs"]["customer_id"] = parts["recs"]["customer_id"].map(
        dict(zip(parts["user_ids"], ids, strict=True))
    )
    parts["user_ids"] = ids

    loaded = load_any(factories.write_seed_bundle(tmp_path / "seed.joblib", parts))

    assert loaded.arrays["user_ids"][0] == "12346"


def test_seed_bundle_naming_unknown_items_is_refused(tmp_path):
    parts = factories.cf_parts()
    parts["recs"].loc[0, "item_id"] = "NOPE"
    with pytest.raises(CorruptBundle, match="1 items not in the mapping, e.g. 'NOPE'"):
        load_any(factories.write_seed_bundle(tmp_path / "seed.joblib", parts))


@pytest.mark.parametrize(
    ("mapping_format", "recs_format"),
    [("pkl", "parquet"), ("json", "csv"), ("pkl", "pkl"), ("json", "pandas-pkl")],
)
def test_cf_artifacts_folder_converts(tmp_path, mapping_format, recs_format):
    parts = factories.cf_parts()
    folder = factories.write_cf_folder(
        tmp_path / "cf", parts, mapping_format=mapping_format, recs_format=recs_format
    )

    loaded = read_artifacts(folder, "cf")

    counts = verify_arrays("cf", loaded.arrays)
    assert counts["n_users"] == 60 and counts["n_recommendations"] == len(parts["recs"])
    expected = factories.cf_array_set(parts)
    assert content_hash(loaded.arrays) == content_hash(expected)
    assert loaded.metadata["source_metadata"]["model"] == "test-als"


def test_cb_artifacts_folder_converts_with_titles(tmp_path):
    loaded = read_artifacts(factories.write_cb_folder(tmp_path / "cb"), "cb")

    assert verify_arrays("cb", loaded.arrays)["n_items"] == 25
    assert loaded.arrays["item_titles"][3] == "PRODUCT 3"
    np.testing.assert_allclose(np.linalg.norm(loaded.arrays["item_vectors"], axis=1), 1.0, rtol=1e-5)


def test_missing_artifact_file_is_named(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")
    (folder / "item_factors.npy").unlink()
    with pytest.raises(IncompatibleBundle, match="item_factors.npy"):
        read_artifacts(folder, "cf")


def test_a_plain_pickle_of_arrays_is_not_a_bundle(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"user_factors_only": np.zeros(3)}))
    with pytest.raises(IncompatibleBundle, match="neither"):
        load_any(path)


# --- hostile files ----------------------------------------------------------------------


def _hostile_files(folder, marker):
    """Write one file per way of smuggling code; each would create ``marker`` if run."""
    files = {}
    files["reduce to os.system"] = folder / "system.joblib"
    joblib.dump({"recs_df": factories.Payload(marker)}, files["reduce to os.system"])
    files["reduce to eval"] = folder / "eval.joblib"
    joblib.dump(
        {"format": "hybridrec-bundle", "metadata": factories.Payload(marker, "eval")}, files["reduce to eval"]
    )
    files["object array"] = folder / "object-array.joblib"
    joblib.dump(
        {"user_factors": np.array([factories.Payload(marker, "exec")], dtype=object)}, files["object array"]
    )
    files["plain pickle"] = folder / "plain.pkl"
    files["plain pickle"].write_bytes(pickle.dumps({"recs_df": factories.Payload(marker)}))
    files["compressed"] = folder / "compressed.joblib.gz"
    joblib.dump({"recs_df": factories.Payload(marker)}, files["compressed"], compress=("gzip", 3))
    return files


def test_hostile_bundles_are_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    for kind, path in _hostile_files(tmp_path, marker).items():
        with pytest.raises(UnsafeBundle, match="not on the allow-list") as refused:
            load_any(path)
        assert not marker.exists(), f"{kind}: the payload ran"
        assert "\n" not in str(refused.value)


def test_the_payloads_are_real(tmp_path):
    """The same files do run code through an unrestricted loader: the refusal above matters."""
    marker = tmp_path / "pwned"
    files = _hostile_files(tmp_path, marker)
    joblib.load(files["reduce to os.system"])
    assert marker.exists()


@pytest.mark.parametrize("target", ["customer_mapping.pkl", "recs_df.pkl"])
def test_hostile_pickles_in_an_artifacts_folder_are_refused(tmp_path, target):
    marker = tmp_path / "pwned"
    folder = factories.write_cf_folder(tmp_path / "cf", recs_format="pkl")
    (folder / target).write_bytes(pickle.dumps(factories.Payload(marker)))

    with pytest.raises(UnsafeBundle):
        read_artifacts(folder, "cf")
    assert not marker.exists()


def test_object_npy_in_an_artifacts_folder_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    folder = factories.write_cf_folder(tmp_path / "cf")
    np.save(
        folder / "user_factors.npy", np.array([factories.Payload(marker)], dtype=object), allow_pickle=True
    )

    with pytest.raises(CorruptBundle, match="Python objects"):
        read_artifacts(folder, "cf")
    assert not marker.exists()


def test_truncated_bundle_is_corrupt_not_a_crash(tmp_path, cf_set):
    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=cf_set)
    data = written.path.read_bytes()
    (tmp_path / "cut.joblib").write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptBundle):
        load_any(tmp_path / "cut.joblib")


def test_a_native_bundle_may_not_use_the_seed_layouts_pandas_classes(tmp_path, cf_set):
    """The seed allow-list admits DataFrames; a native bundle still keeps to the native one."""
    import pandas as pd

    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=cf_set)
    document = joblib.load(written.path)
    document["metadata"]["table"] = pd.DataFrame({"a": [1]})
    joblib.dump(document, tmp_path / "with-frame.joblib")

    with pytest.raises(UnsafeBundle, match="pandas"):
        load_any(tmp_path / "with-frame.joblib")
