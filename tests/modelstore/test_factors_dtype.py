"""User factors stored as float16 or int8 with a scale per row: written, verified, served, refused."""

from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from modelstore import services
from modelstore.bundles import (
    CorruptBundle,
    Limits,
    OversizedBundle,
    open_bundle,
    verify_bundle,
    write_cf_bundle,
)
from modelstore.bundles.layout import quantise_factors, quantise_rows, quantised_cf_arrays
from modelstore.bundles.verify import verify_arrays
from modelstore.exceptions import RegistryError
from modelstore.models import ModelVersion
from recommendations.engines import CFEngine
from recommendations.engines.exceptions import InvalidArrays
from recommendations.engines.factors import UserFactors
from recommendations.services import HybridRecommendationService
from recommendations.serving import reset_cache
from tests import factories

N_USERS, N_ITEMS, N_FACTORS = 400, 120, 16


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "user_ids": [f"C{i:05d}" for i in range(N_USERS)],
        "item_ids": [f"I{i:04d}" for i in range(N_ITEMS)],
        "user_factors": rng.normal(size=(N_USERS, N_FACTORS)).astype(np.float32),
        "item_factors": rng.normal(size=(N_ITEMS, N_FACTORS)).astype(np.float32),
    }


def test_int8_rows_are_within_half_a_step_of_the_float32_ones():
    rows = np.random.default_rng(1).normal(size=(50, 16)).astype(np.float32)
    rows[3] = 0.0  # an all-zero row keeps a zero scale and zero codes

    stored, scale = quantise_rows(rows, "int8")

    assert stored.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (50,)
    np.testing.assert_allclose(scale, np.abs(rows).max(axis=1) / 127, rtol=1e-6)
    assert np.abs(stored).max() == 127
    error = np.abs(stored * scale[:, None] - rows)
    assert (error <= scale[:, None] / 2 + 1e-7).all()
    assert scale[3] == 0 and not stored[3].any()


def test_chunked_quantisation_matches_one_block():
    factors = np.random.default_rng(2).normal(size=(1000, 8)).astype(np.float32)

    for dtype in ("float16", "int8"):
        whole = quantise_rows(factors, dtype)
        chunked = quantise_factors(factors, dtype, chunk_rows=37)
        np.testing.assert_array_equal(whole[0], chunked[0])
        if dtype == "int8":
            np.testing.assert_array_equal(whole[1], chunked[1])


def test_float16_overflow_is_refused_not_stored_as_infinity():
    with pytest.raises(ValueError, match="float16's range"):
        quantise_factors(np.full((2, 2), 1e6, np.float32), "float16")


def test_an_unknown_dtype_is_refused_naming_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="float32, float16, int8"):
        write_cf_bundle(tmp_path / "b.joblib", **_model(), factors_dtype="int4")


@pytest.mark.parametrize(("dtype", "ratio"), [("float16", 0.5), ("int8", 0.25)])
def test_smaller_factors_make_a_smaller_bundle_that_verifies_and_maps(tmp_path, dtype, ratio):
    model = _model()
    full = write_cf_bundle(tmp_path / "f32.joblib", **model, recommendations=_no_recs())
    small = write_cf_bundle(
        tmp_path / f"{dtype}.joblib", **model, recommendations=_no_recs(), factors_dtype=dtype
    )

    bundle = open_bundle(small.path)

    assert small.metadata["factors_dtype"] == dtype and full.metadata["factors_dtype"] == "float32"
    assert bundle.arrays["user_factors"].dtype == np.dtype(dtype)
    assert isinstance(bundle.arrays["user_factors"], np.memmap)
    verify_bundle(bundle)
    factor_bytes = N_USERS * N_FACTORS * 4
    saved = full.size_bytes - small.size_bytes
    scale_bytes = N_USERS * 4 if dtype == "int8" else 0
    assert saved >= factor_bytes * (1 - ratio) - scale_bytes - 256


def _no_recs():
    return np.full((N_USERS, 0), -1), np.zeros((N_USERS, 0), np.float32)


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_the_engine_scores_a_mapped_bundle_row_by_row_close_to_float32(tmp_path, dtype):
    model = _model()
    exact = CFEngine(
        open_bundle(write_cf_bundle(tmp_path / "a.joblib", **model, recommendations=_no_recs()).path).arrays
    )
    path = write_cf_bundle(
        tmp_path / "b.joblib", **model, recommendations=_no_recs(), factors_dtype=dtype
    ).path
    bundle = open_bundle(path)
    engine = CFEngine(bundle.arrays)

    # Nothing is converted at load: the engine reads the mapped int8/float16 pages as they are.
    assert engine.user_factors.dtype == np.dtype(dtype)
    assert np.shares_memory(engine.user_factors, bundle.arrays["user_factors"])
    customers = model["user_ids"][:50]
    overlaps, largest_error = [], 0.0
    for customer, batch in zip(customers, engine.recommend_batch(customers, k=10), strict=True):
        mine, theirs = engine.recommend(customer, k=10), exact.recommend(customer, k=10)
        assert mine.item_ids.tolist() == batch.item_ids.tolist()
        assert mine.scores.dtype == np.float32
        overlaps.append(len(set(mine.item_ids) & set(theirs.item_ids)) / 10)
        largest_error = max(largest_error, float(np.abs(mine.scores - theirs.scores).max()))
    assert np.mean(overlaps) >= 0.9
    assert largest_error < (0.01 if dtype == "float16" else 0.1)


def test_user_factors_read_rows_in_float32():
    stored = np.array([[127, -64], [0, 0]], dtype=np.int8)
    rows = UserFactors(stored, np.array([0.5, 0.0], dtype=np.float32))

    np.testing.assert_array_equal(rows.row(0), np.array([63.5, -32.0], np.float32))
    np.testing.assert_array_equal(rows.rows([1, 0]), np.array([[0, 0], [63.5, -32.0]], np.float32))
    assert rows.row(0).dtype == rows.rows([0]).dtype == np.float32
    with pytest.raises(InvalidArrays, match="user_factors_scale"):
        UserFactors(stored)
    with pytest.raises(InvalidArrays, match="float32, float16 or int8"):
        UserFactors(stored.astype(np.int16))


def _broken(change):
    arrays = quantised_cf_arrays(factories.cf_array_set(), "int8")
    change(arrays)
    return arrays


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("user_factors_scale"), "need user_factors_scale"),
        (lambda a: a.update(user_factors_scale=a["user_factors_scale"][:-1]), "shape \\(60,\\)"),
        (lambda a: a.update(user_factors_scale=a["user_factors_scale"].astype(np.float64)), "float32"),
        (lambda a: a["user_factors_scale"].__setitem__(4, np.nan), "NaN"),
        (lambda a: a["user_factors_scale"].__setitem__(4, -1.0), "negative"),
        (lambda a: a.update(user_factors=a["user_factors"].astype(np.int16)), "int16"),
        (lambda a: a.update(user_factors=a["user_factors"].astype(np.float16)), "belongs to int8"),
        (lambda a: a.update(user_factors=a["user_factors"][:-1]), "59 rows"),
    ],
)
def test_verification_refuses_inconsistent_int8_factors(change, message):
    with pytest.raises(CorruptBundle, match=message):
        verify_arrays("cf", _broken(change))


def test_verification_refuses_metadata_that_misstates_the_storage(tmp_path):
    path = write_cf_bundle(tmp_path / "b.joblib", **_model(), factors_dtype="int8").path
    bundle = open_bundle(path)
    lying = type(bundle)(**{**bundle.__dict__, "metadata": {**bundle.metadata, "factors_dtype": "float32"}})

    with pytest.raises(CorruptBundle, match="metadata says the user factors are 'float32'"):
        verify_bundle(lying)


def test_a_mapped_bundle_larger_than_the_byte_budget_still_opens(tmp_path):
    path = write_cf_bundle(tmp_path / "b.joblib", **_model(), factors_dtype="int8").path
    budget = Limits(max_bytes=path.stat().st_size // 4)

    mapped = open_bundle(path, limits=budget)  # nothing is read into memory: no budget spent

    assert mapped.memory_mapped and verify_bundle(mapped)["n_users"] == N_USERS
    with pytest.raises(OversizedBundle):
        open_bundle(path, limits=budget, mmap=False)


@pytest.mark.django_db
def test_bundle_models_builds_an_int8_version_that_serves(tmp_path, settings):
    folder = factories.write_cf_folder(tmp_path / "cf")
    out = StringIO()
    call_command(
        "bundle_models", "--cf-artifacts", str(folder), "--factors-dtype", "int8", "--activate", stdout=out
    )
    # The budget is for what a load allocates (reading the folder allocated its arrays); a
    # mapped bundle allocates none of its arrays, so it verifies and serves within 4 KiB.
    settings.HYBRIDREC_MAX_BUNDLE_BYTES = 4096
    call_command("bundle_models", "--verify", stdout=StringIO())
    version = ModelVersion.objects.get(kind="cf")
    reset_cache()
    answer = HybridRecommendationService().get_personalized_cf("C0059", k=5)

    assert "int8 customer factors" in out.getvalue()
    assert version.status == ModelVersion.Status.READY and version.is_active
    assert version.size_bytes > settings.HYBRIDREC_MAX_BUNDLE_BYTES
    assert version.metadata["factors_dtype"] == "int8"
    assert len(answer) == 5  # C0059 has no precomputed list: ranked from its int8 row
    reset_cache()


@pytest.mark.django_db
def test_the_same_folder_three_ways_gives_three_versions(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")

    sizes = {}
    for dtype in ("float32", "float16", "int8"):
        result = services.version_build(
            kind="cf", artifacts_path=folder, factors_dtype=dtype, verify=services.INLINE
        )
        assert result.created and result.version.status == ModelVersion.Status.READY
        sizes[dtype] = result.version.size_bytes

    assert sizes["float32"] > sizes["float16"] > sizes["int8"]


@pytest.mark.django_db
def test_a_bad_dtype_fails_the_build_row_with_the_reason(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")
    version = services.version_start_build(kind="cf")

    with pytest.raises(RegistryError, match="int4"):
        services.version_build(kind="cf", artifacts_path=folder, factors_dtype="int4", version=version)

    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and "int4" in version.error


@pytest.mark.django_db
def test_the_command_writes_an_int8_file_and_refuses_other_dtypes(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")
    out = StringIO()

    call_command(
        "bundle_models",
        "--cf-artifacts",
        str(folder),
        "--factors-dtype",
        "int8",
        "--out",
        str(tmp_path / "m.joblib"),
        stdout=out,
    )

    assert open_bundle(tmp_path / "m.joblib").arrays["user_factors"].dtype == np.int8
    assert "int8 customer factors" in out.getvalue()
    with pytest.raises(CommandError, match="invalid choice"):
        call_command(
            "bundle_models", "--cf-artifacts", str(folder), "--factors-dtype", "int4", stdout=StringIO()
        )


def _random_read_mappings(path):
    """Return how many of this process's mappings of ``path`` carry MADV_RANDOM ("rr" in VmFlags)."""
    target, inside, found = str(path.resolve()), False, 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):
            inside = len(fields) >= 6 and fields[5] == target
        elif inside and line.startswith("VmFlags:"):
            found += "rr" in fields[1:]
    return found


def test_large_customer_arrays_are_read_without_read_ahead(tmp_path, monkeypatch):
    from recommendations.engines import factors

    path = write_cf_bundle(tmp_path / "b.joblib", **_model(), factors_dtype="int8").path
    small = open_bundle(path)
    engine = CFEngine(small.arrays)
    assert not engine.random_access and _random_read_mappings(path) == 0  # under 1 GiB: read-ahead stays

    monkeypatch.setattr(factors, "RANDOM_ACCESS_MIN_BYTES", 1)
    large = CFEngine(open_bundle(path).arrays)

    assert large.random_access
    # ids, order, factors, scales and the three recommendation arrays; items keep read-ahead.
    assert _random_read_mappings(path) == 7
    assert (
        large.recommend("C00001", k=5).item_ids.tolist() == engine.recommend("C00001", k=5).item_ids.tolist()
    )


@pytest.mark.django_db(transaction=True)
def test_a_queued_build_keeps_the_factor_storage(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")

    call_command(
        "bundle_models",
        "--cf-artifacts",
        str(folder),
        "--factors-dtype",
        "float16",
        "--async",
        stdout=StringIO(),
    )

    version = ModelVersion.objects.get(kind="cf")  # built by the task (in-process without a broker)
    assert version.status == ModelVersion.Status.READY
    assert version.metadata["factors_dtype"] == "float16" and version.n_users == 60
