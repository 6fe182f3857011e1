"""Smaller customer factors rank almost as well: NDCG@10 on Online Retail, float16 and int8 against float32."""

import pytest

from modelstore import services, storage
from modelstore.bundles import open_bundle
from modelstore.models import ModelVersion
from recommendations.engines import CFEngine
from recommendations.training.evaluation import evaluate_engines, evaluate_version, read_test_pairs
from tests.support.data import ONLINE_RETAIL_FILE, ONLINE_RETAIL_MISSING

pytestmark = pytest.mark.django_db

DTYPES = ("float32", "float16", "int8")


def _factor_ranked(version):
    """Return a CF engine over a version's arrays without its precomputed lists: every answer is
    ranked from the stored factors, as for a customer without a list or a topped-up list."""
    path = storage.local_path(version.file.name, version.sha256)
    arrays = open_bundle(path, expected_sha256=version.sha256).arrays
    return CFEngine({name: array for name, array in arrays.items() if not name.startswith("recs_")})


@pytest.mark.slow
@pytest.mark.skipif(not ONLINE_RETAIL_FILE.is_file(), reason=ONLINE_RETAIL_MISSING)
def test_online_retail_ndcg_moves_less_than_one_percent_with_smaller_factors(tmp_path):
    from recommendations.training.pipeline import train_models

    summary = train_models(
        interactions_path=ONLINE_RETAIL_FILE,
        data_format="online-retail",
        split_date="2011-11-01",
        out_dir=tmp_path / "artifacts" / "or",
    )
    customers, items = read_test_pairs(summary["test_path"])
    served, ranked = {}, {}
    for dtype in DTYPES:
        version = services.version_build(
            kind="cf", artifacts_path=summary["cf_dir"], factors_dtype=dtype, verify=services.INLINE
        ).version
        assert version.status == ModelVersion.Status.READY, version.error
        served[dtype] = evaluate_version(cf_version=version, test_path=summary["test_path"])["strategies"][
            "cf"
        ]
        ranked[dtype] = evaluate_engines(cf=_factor_ranked(version), customer_ids=customers, item_ids=items)[
            "strategies"
        ]["cf"]

    # Precomputed lists were ranked from the float32 factors at build time: served unchanged.
    assert served["float16"] == served["int8"] == served["float32"]
    baseline = ranked["float32"]
    assert baseline["ndcg"] > 0.09  # a real model, not an empty ranking
    for dtype in ("float16", "int8"):
        for metric in ("ndcg", "precision"):
            change = abs(ranked[dtype][metric] - baseline[metric]) / baseline[metric]
            assert change < 0.01, f"{dtype} {metric}@10 moved {change:.2%}"
