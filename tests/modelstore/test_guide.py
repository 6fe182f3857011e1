"""docs/GUIDE.md: its Python example runs as written, and what it writes registers and serves."""

import re
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from modelstore import selectors
from modelstore.bundles import open_bundle

pytestmark = pytest.mark.django_db

GUIDE = Path(settings.BASE_DIR) / "docs" / "GUIDE.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_guide_example_writes_bundles_that_register_verify_and_serve(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert blocks, "the guide has no Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), {"__name__": "guide"})  # our own document, run as written

    cf_path, cb_path = tmp_path / "my-cf.joblib", tmp_path / "my-cb.joblib"
    assert "my-cf.joblib" in capsys.readouterr().out
    # Register them as the guide says, with the commands it shows.
    call_command("import_bundle", str(cf_path), "--label", "my-cf-1", "--activate")
    call_command("import_bundle", str(cb_path), "--label", "my-cb-1", "--activate")
    cf, cb = selectors.active_version("cf"), selectors.active_version("cb")
    assert (cf.label, cf.status, cf.n_users, cf.n_items, cf.n_factors) == ("my-cf-1", "ready", 500, 120, 16)
    assert (cb.label, cb.status, cb.n_items) == ("my-cb-1", "ready", 120)

    # Recommendations leave out what a customer bought; CB answers carry the titles.
    arrays = open_bundle(cf_path).arrays
    for user in range(0, 500, 50):
        recs = arrays["recs_indices"][arrays["recs_indptr"][user] : arrays["recs_indptr"][user + 1]]
        had = arrays["interactions_indices"][
            arrays["interactions_indptr"][user] : arrays["interactions_indptr"][user + 1]
        ]
        assert len(recs) == 50 and not set(recs.tolist()) & set(had.tolist())
    from recommendations.services import HybridRecommendationService

    service = HybridRecommendationService()
    similar = service.similar("SKU-0001", k=3)
    assert similar["model"]["cb"]["label"] == "my-cb-1"
    assert all(item["title"].startswith("Product ") for item in similar["items"])
    answer = service.recommend("C00007", k=5)
    assert answer["model"]["cf"]["label"] == "my-cf-1" and len(answer["items"]) == 5


def test_the_writers_refuse_arrays_that_do_not_fit(tmp_path):
    from modelstore.bundles import CorruptBundle, write_cf_bundle

    with pytest.raises(CorruptBundle, match="not unique"):
        write_cf_bundle(
            tmp_path / "bad.joblib",
            user_ids=["a", "a"],
            item_ids=["x", "y"],
            user_factors=np.ones((2, 2)),
            item_factors=np.ones((2, 2)),
        )
    assert not (tmp_path / "bad.joblib").exists()


def documented_messages():
    """Return a regular expression per message in the guide's error tables (``…`` is any text)."""
    rows = [line for line in GUIDE.read_text().splitlines() if line.startswith("| `")]
    messages = [span for row in rows for span in re.findall(r"`([^`]+)`", row.split(" | ")[0])]
    return [re.compile(".+".join(re.escape(part) for part in message.split("…"))) for message in messages]


CF_INPUTS = {
    "user_ids": ["a", "b"],
    "item_ids": ["x", "y", "z"],
    "user_factors": np.ones((2, 4)),
    "item_factors": np.ones((3, 4)),
}
CB_INPUTS = {"item_ids": ["x", "y"], "item_vectors": np.ones((2, 3))}
WRITER_MISTAKES = {
    "factor widths differ": ("cf", {"item_factors": np.ones((3, 8))}),
    "factors not a matrix": ("cf", {"user_factors": np.ones(8)}),
    "dense interactions": ("cf", {"interactions": np.ones((2, 3))}),
    "interactions of another shape": ("cf", {"interactions": "csr 2x5"}),
    "duplicate customer ids": ("cf", {"user_ids": ["a", "a"]}),
    "an empty customer id": ("cf", {"user_ids": ["a", ""]}),
    "more ids than factor rows": ("cf", {"user_ids": ["a", "b", "c"]}),
    "factors with NaN": ("cf", {"user_factors": np.full((2, 4), np.nan)}),
    "recommendations of two shapes": ("cf", {"recommendations": (np.zeros((2, 2)), np.zeros((2, 3)))}),
    "recommendations of unknown items": ("cf", {"recommendations": (np.full((2, 2), 7), np.zeros((2, 2)))}),
    "an unknown factors dtype": ("cf", {"factors_dtype": "int4"}),
    "float16 overflow": ("cf", {"user_factors": np.full((2, 4), 1e6), "factors_dtype": "float16"}),
    "duplicate item ids": ("cb", {"item_ids": ["x", "x"]}),
    "vectors not a matrix": ("cb", {"item_vectors": np.ones(4)}),
    "titles of another length": ("cb", {"item_titles": ["t"]}),
    "more item ids than vectors": ("cb", {"item_ids": ["x", "y", "z"]}),
}


@pytest.mark.parametrize("mistake", WRITER_MISTAKES)
def test_each_writer_mistake_is_refused_with_the_guides_one_line_message(tmp_path, mistake):
    import scipy.sparse

    from modelstore.bundles import BundleError, write_cb_bundle, write_cf_bundle

    kind, changes = WRITER_MISTAKES[mistake]
    if isinstance(changes.get("interactions"), str):
        changes = {"interactions": scipy.sparse.csr_matrix(np.ones((2, 5)))}
    writer, inputs = (write_cf_bundle, CF_INPUTS) if kind == "cf" else (write_cb_bundle, CB_INPUTS)

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises((ValueError, BundleError)) as refused:
        writer(out / "bad.joblib", **{**inputs, **changes})

    message = str(refused.value)
    assert "\n" not in message and "np.str_" not in message
    assert any(pattern.fullmatch(message) for pattern in documented_messages()), message
    assert not list(out.iterdir())


def test_the_guide_lists_every_seed_layout_file_the_readers_look_for():
    text = GUIDE.read_text()
    source = (Path(settings.BASE_DIR) / "modelstore" / "bundles" / "artifacts.py").read_text()
    names = set(re.findall(r'"([a-z_]+\.(?:npy|npz|pkl|json|csv|parquet))"', source))
    names |= {
        f"{stem}.{suffix}" for stem in ("customer_mapping", "item_mapping") for suffix in ("pkl", "json")
    }
    assert names and {name for name in names if f"`{name}`" not in text} == set()
