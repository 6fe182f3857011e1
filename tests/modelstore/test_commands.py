"""The registry's management commands: what a user types and what they see."""

import json
from io import StringIO

import joblib
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from modelstore import selectors
from modelstore.models import ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_bundle_models_builds_verifies_and_activates_both_kinds(cf_folder, cb_folder):
    out = run(
        "bundle_models", "--cf-artifacts", str(cf_folder), "--cb-artifacts", str(cb_folder), "--activate"
    )

    assert "built cf version" in out and "built cb version" in out
    cf, cb = selectors.active_version("cf"), selectors.active_version("cb")
    assert cf.status == cb.status == "ready"
    assert (cf.n_users, cf.n_items) == (60, 25)
    assert "60 users, 25 items" in out


def test_bundle_models_reads_the_folders_from_settings(cf_folder, cb_folder, settings):
    settings.HYBRIDREC_CF_ARTIFACTS = str(cf_folder)
    settings.HYBRIDREC_CB_ARTIFACTS = str(cb_folder)
    run("bundle_models", "--cb-only", "--compress", "lz4:3")
    version = ModelVersion.objects.get()
    assert version.kind == "cb" and version.compression == "lz4"


def test_bundle_models_twice_is_one_version(cf_folder):
    run("bundle_models", "--cf-artifacts", str(cf_folder))
    out = run("bundle_models", "--cf-artifacts", str(cf_folder))
    assert out.startswith("already registered")
    assert ModelVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cf-only"], "no CF artifacts folder"),
        (["--cf-artifacts", "/nonexistent/cf"], "does not exist"),
        (["--cf-only", "--cf-artifacts", "{cf}", "--compress", "zstd"], "unknown compression 'zstd'"),
    ],
)
def test_bundle_models_bad_input_is_a_one_line_error(cf_folder, args, message):
    args = [arg.format(cf=cf_folder) for arg in args]
    with pytest.raises(CommandError, match=message) as error:
        run("bundle_models", *args)
    assert "\n" not in str(error.value)


def test_bundle_models_refuses_a_hostile_artifacts_folder(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")
    (folder / "item_mapping.pkl").write_bytes(
        __import__("pickle").dumps(factories.Payload(tmp_path / "pwned"))
    )
    with pytest.raises(CommandError, match="not on the allow-list"):
        run("bundle_models", "--cf-artifacts", str(folder))
    assert not (tmp_path / "pwned").exists()
    assert ModelVersion.objects.count() == 0


def test_bundle_models_verify_alone_reverifies_everything(register, settings):
    good = register("cf", factories.cf_array_set(seed=1))
    bad = register("cf", factories.cf_array_set(seed=2))
    (settings.MEDIA_ROOT / bad.file.name).chmod(0o644)  # stored bundles are read-only
    (settings.MEDIA_ROOT / bad.file.name).write_bytes(b"not a bundle any more")

    with pytest.raises(CommandError, match="1 version"):
        run("bundle_models", "--verify")
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == "ready" and bad.status == "failed"


@pytest.mark.parametrize("compress", [0, ("gzip", 3)])
def test_import_bundle_accepts_seed_bundles(tmp_path, compress):
    parts = factories.cf_parts()
    path = factories.write_seed_bundle(tmp_path / "seed.joblib", parts, compress=compress)

    out = run("import_bundle", str(path), "--activate")

    version = selectors.active_version("cf")
    assert out.startswith("registered cf version")
    assert (version.n_users, version.n_items, version.n_recommendations) == (60, 25, len(parts["recs"]))


@pytest.mark.parametrize("via", ["os.system", "eval", "exec"])
def test_import_bundle_refuses_hostile_files_without_running_them(tmp_path, via):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.joblib"
    joblib.dump({"recs_df": factories.Payload(marker, via)}, path)
    with pytest.raises(CommandError, match="refused to load") as error:
        run("import_bundle", str(path))
    assert "\n" not in str(error.value)
    assert not marker.exists()
    assert ModelVersion.objects.count() == 0


def test_activate_and_rollback_commands(register):
    a = register("cf", factories.cf_array_set(seed=1), label="first", activate=True)
    b = register("cf", factories.cf_array_set(seed=2), label="second")

    assert "activated" in run("activate_model", "second")
    assert selectors.active_version("cf") == b
    assert "already active" in run("activate_model", str(b.pk))
    out = run("rollback_model", "--kind", "cf")
    assert "to cf version" in out and selectors.active_version("cf") == a
    with pytest.raises(CommandError, match="no model version with id or label 'nope'"):
        run("activate_model", "nope")
    with pytest.raises(CommandError, match="no earlier cb version"):
        run("rollback_model", "--kind", "cb")


def test_list_models_json_has_the_documented_fields(register):
    register("cf", factories.cf_array_set(), activate=True)
    register("cb", factories.cb_array_set())

    versions = json.loads(run("list_models", "--json"))

    assert [v["kind"] for v in versions] == ["cb", "cf"]
    required = {
        "id",
        "label",
        "kind",
        "status",
        "is_active",
        "sha256",
        "size_bytes",
        "n_users",
        "n_items",
        "n_recommendations",
        "metrics",
        "error",
    }
    assert required <= set(versions[0])
    assert versions[1]["is_active"] and versions[1]["n_users"] == 60
    assert json.loads(run("list_models", "--kind", "cb", "--json"))[0]["kind"] == "cb"
    table = run("list_models")
    assert "yes" in table and "cf" in table
