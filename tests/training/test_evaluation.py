"""Offline evaluation of registered versions: the numbers against implicit's, the command, the real data."""

import io

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from django.core.management import CommandError, call_command

from modelstore import services
from modelstore.models import ModelVersion
from recommendations.training import cb, cf
from recommendations.training.artifacts import write_cb_artifacts, write_cf_artifacts
from recommendations.training.evaluation import METRICS, EvaluationError, evaluate_version
from tests.support.data import ONLINE_RETAIL_FILE, ONLINE_RETAIL_MISSING

pytestmark = pytest.mark.django_db

COLOURS = ("RED", "BLUE", "GREEN", "PINK")
PRODUCTS = ("MUG", "BAG", "CANDLE", "CLOCK", "TIN", "LANTERN")


def clustered_interactions(seed=0, n_users=240, n_items=96, groups=4):
    """Return CSR float32 (n_users, n_items): each customer buys mostly from the group of their taste."""
    rng = np.random.default_rng(seed)
    group_of_user = rng.integers(0, groups, n_users)
    group_of_item = np.arange(n_items) % groups
    rows, cols = [], []
    for user in range(n_users):
        own = np.flatnonzero(group_of_item == group_of_user[user])
        picks = np.unique(
            np.concatenate([rng.choice(own, size=9, replace=False), rng.choice(n_items, size=2)])
        )
        rows += [user] * len(picks)
        cols += picks.tolist()
    return scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))


def build(kind, folder):
    version = services.version_build(kind=kind, artifacts_path=folder).version
    version = services.version_verify(version=version)
    assert version.status == ModelVersion.Status.READY, version.error
    return version


@pytest.fixture
def split(tmp_path):
    """Train ALS on a random 80 % of the pairs, register CF and CB versions, write the rest as test.csv."""
    from implicit.evaluation import train_test_split

    train, test = train_test_split(clustered_interactions(), train_percentage=0.8, random_state=1)
    train, test = scipy.sparse.csr_matrix(train), scipy.sparse.csr_matrix(test)
    user_ids = np.array([f"u{i:03d}" for i in range(train.shape[0])])
    item_ids = np.array([f"i{i:03d}" for i in range(train.shape[1])])
    model = cf.train_als(train, factors=8, iterations=5, regularization=0.1, alpha=5.0, random_state=0)
    rows, scores = cf.recommend_all(model, train, top_n=20)
    write_cf_artifacts(
        tmp_path / "artifacts" / "run" / "cf",
        user_ids=user_ids,
        item_ids=item_ids,
        user_factors=model.user_factors,
        item_factors=model.item_factors,
        recommendations=cf.recommendations_frame(user_ids, item_ids, rows, scores),
        interactions=train,
        item_popularity=cf.item_popularity(train),
        metadata={},
    )
    # Titles follow the taste groups (item i is in group i % 4), so content similarity means something.
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"{COLOURS[i % 4]} {PRODUCTS[(i // 4) % 6]} {i}" for i in range(len(item_ids))],
        }
    )
    content = cb.train_tfidf(items)
    write_cb_artifacts(
        tmp_path / "artifacts" / "run" / "cb",
        item_ids=content.item_ids,
        item_vectors=content.item_vectors,
        items=items,
        metadata={},
    )
    coo = test.tocoo()
    test_path = tmp_path / "test.csv"
    pd.DataFrame({"customer_id": user_ids[coo.row], "item_id": item_ids[coo.col]}).to_csv(
        test_path, index=False
    )
    return {
        "cf": build("cf", tmp_path / "artifacts" / "run" / "cf"),
        "cb": build("cb", tmp_path / "artifacts" / "run" / "cb"),
        "test_path": test_path,
        "model": model,
        "train": train,
        "test": test,
    }


@pytest.mark.parametrize("k", [5, 10])
def test_cf_figures_match_implicit_evaluation(split, k):
    from implicit.evaluation import mean_average_precision_at_k, ndcg_at_k

    metrics = evaluate_version(cf_version=split["cf"], test_path=split["test_path"], k=k)

    model, train, test = split["model"].als, split["train"], split["test"]
    expected_ndcg = ndcg_at_k(model, train, test, K=k, show_progress=False)
    expected_map = mean_average_precision_at_k(model, train, test, K=k, show_progress=False)
    assert metrics["customers"] == np.count_nonzero(np.diff(test.indptr))
    assert metrics["strategies"]["cf"]["ndcg"] == pytest.approx(expected_ndcg, abs=1e-6)
    assert metrics["strategies"]["cf"]["map"] == pytest.approx(expected_map, abs=1e-6)
    assert expected_ndcg > 0.1  # the groups are learnable: the comparison is not between zeros
    assert metrics["strategies"]["cf"]["ndcg"] > 1.5 * metrics["strategies"]["popular"]["ndcg"]


def test_metrics_are_stored_on_the_cf_version_in_the_documented_shape(split, settings):
    settings.HYBRIDREC_HYBRID_WEIGHT = 0.85
    metrics = evaluate_version(
        cf_version=split["cf"], cb_version=split["cb"], test_path=split["test_path"], k=10
    )
    stored = ModelVersion.objects.get(pk=split["cf"].pk).metrics
    assert stored == metrics
    assert stored["k"] == 10 and stored["test"] == "test.csv" and len(stored["test_sha256"]) == 64
    assert set(stored["strategies"]) == {"cf", "cb", "hybrid", "popular"}
    for name, values in stored["strategies"].items():
        assert set(values) == set(METRICS), name
        assert all(0.0 <= value <= 1.0 for value in values.values()), name
    assert stored["cb_version"] == {"id": split["cb"].pk, "label": split["cb"].label}
    assert stored["weight"] == 0.85  # HYBRIDREC_HYBRID_WEIGHT
    assert ModelVersion.objects.get(pk=split["cb"].pk).metrics == {}


def test_weight_one_makes_hybrid_cf_and_unknown_customers_fall_back(split):
    with open(split["test_path"], "a") as fh:
        fh.write("stranger,i001\n")
    metrics = evaluate_version(
        cf_version=split["cf"], cb_version=split["cb"], test_path=split["test_path"], weight=1.0
    )
    strategies = metrics["strategies"]
    assert strategies["hybrid"] == strategies["cf"]
    assert strategies["cf"]["fallback_share"] == pytest.approx(1 / metrics["customers"])
    assert strategies["popular"]["fallback_share"] == 0.0


def test_evaluate_model_prints_the_table_and_stores_the_metrics(split, settings):
    settings.HYBRIDREC_HYBRID_WEIGHT = 0.9
    out = io.StringIO()
    call_command(
        "evaluate_model", split["cf"].label, "--cb", str(split["cb"].pk), "--test", str(split["test_path"]),
        "--k", "10", stdout=out,
    )  # fmt: skip
    lines = out.getvalue().splitlines()
    stored = ModelVersion.objects.get(pk=split["cf"].pk).metrics
    assert lines[0].startswith(
        f"{stored['customers']:,} test customers, {stored['relevant_items']:,} held-out items"
    )
    assert lines[0].endswith("k=10, hybrid weight 0.9")
    assert lines[1].split() == [
        "strategy", "precision@10", "recall@10", "ndcg@10", "map@10", "coverage", "fallback_share",
    ]  # fmt: skip
    rows = {line.split()[0]: [float(value) for value in line.split()[1:]] for line in lines[2:6]}
    assert list(rows) == ["cf", "cb", "hybrid", "popular"]
    for name, values in rows.items():
        expected = [stored["strategies"][name][metric] for metric in METRICS]
        np.testing.assert_allclose(values, expected, atol=5e-5)
    assert lines[6].startswith(f"stored on cf version {split['cf'].pk} {split['cf'].label} in ")
    assert len(lines) == 7


def test_evaluate_model_without_cb_has_cf_and_popular_only(split):
    out = io.StringIO()
    call_command(
        "evaluate_model", str(split["cf"].pk), "--test", str(split["test_path"]), "--k", "5", stdout=out
    )
    stored = ModelVersion.objects.get(pk=split["cf"].pk).metrics
    assert set(stored["strategies"]) == {"cf", "popular"} and stored["k"] == 5
    assert [line.split()[0] for line in out.getvalue().splitlines()[2:4]] == ["cf", "popular"]
    assert "hybrid weight" not in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--test", "{test}"], "no model version with id or label 'nope'"),
        (["{cb}", "--test", "{test}"], "is cb, expected cf"),
        (["{cf}", "--cb", "{cf}", "--test", "{test}"], "is cf, expected cb"),
        (["{cf}", "--test", "{tmp}/missing.csv"], "missing.csv does not exist"),
        (["{cf}", "--test", "{tmp}/columns.csv"], "columns.csv needs the columns customer_id and item_id"),
        (["{cf}", "--test", "{tmp}/empty.csv"], "empty.csv is empty"),
        (["{cf}", "--test", "{tmp}/binary.csv"], "binary.csv is not a text CSV file"),
        (["{cf}", "--test", "{tmp}/wide.csv"], "wide.csv: .*has a line of more than"),
        (["{cf}", "--test", "{tmp}/unknown.csv"], "no held-out item is in the CF version's catalogue"),
        (["{cf}", "--test", "{test}", "--k", "0"], r"k=0 is outside 1\.\.1000"),
        (["{cf}", "--cb", "{cb}", "--test", "{test}", "--weight", "1.5"], r"weight=1\.5 is outside \[0, 1\]"),
    ],
)
def test_evaluate_model_bad_input_is_a_one_line_command_error(split, tmp_path, args, message):
    (tmp_path / "columns.csv").write_text("customer,item\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81" * 50)
    (tmp_path / "unknown.csv").write_text("customer_id,item_id\nu001,nothing\n")
    (tmp_path / "wide.csv").write_bytes(b"a," * 600_000 + b"customer_id,item_id\n")  # 1.2 MB header
    values = {"test": split["test_path"], "tmp": tmp_path, "cf": split["cf"].pk, "cb": split["cb"].label}
    with pytest.raises(CommandError, match=message) as caught:
        call_command("evaluate_model", *[a.format(**values) for a in args], stdout=io.StringIO())
    assert "\n" not in str(caught.value)
    assert ModelVersion.objects.get(pk=split["cf"].pk).metrics == {}


def test_a_version_without_a_file_is_refused(split):
    building = services.version_start_build(kind="cf")
    with pytest.raises(EvaluationError, match="has no stored bundle file"):
        evaluate_version(cf_version=building, test_path=split["test_path"])


@pytest.mark.slow
@pytest.mark.skipif(not ONLINE_RETAIL_FILE.is_file(), reason=ONLINE_RETAIL_MISSING)
def test_online_retail_cf_doubles_popularity_and_hybrid_matches_cf(tmp_path, settings):
    settings.HYBRIDREC_HYBRID_WEIGHT = 0.9  # the default, whatever the environment says
    from recommendations.training.pipeline import train_models

    summary = train_models(
        interactions_path=ONLINE_RETAIL_FILE,
        data_format="online-retail",
        split_date="2011-11-01",
        out_dir=tmp_path / "artifacts" / "or",
    )
    cf_version = build("cf", summary["cf_dir"])
    cb_version = build("cb", summary["cb_dir"])
    metrics = evaluate_version(
        cf_version=cf_version, cb_version=cb_version, test_path=summary["test_path"], k=10
    )
    ndcg = {name: values["ndcg"] for name, values in metrics["strategies"].items()}
    assert metrics["customers"] == 1440
    assert ndcg["cf"] >= 2 * ndcg["popular"]
    assert ndcg["hybrid"] >= ndcg["cf"]
    assert ndcg["cb"] > ndcg["popular"]
