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
    (cb_row,) = [line for line in table.splitlines() if "  cb  " in line]
    assert cb_row.split()[6:9] == ["—", "25", "—"]  # no users and no "0 recommendations" for CB


def test_a_cb_summary_counts_items_and_dimensions_not_factors(tmp_path):
    from modelstore.bundles import write_bundle

    path = tmp_path / "cb.joblib"
    write_bundle(path, kind="cb", arrays=factories.cb_array_set())
    out = run("import_bundle", str(path))
    assert "25 items, 8 dimensions" in out and "factors" not in out and "recommendations" not in out


def test_bundle_models_label_gets_the_kind_as_its_help_says(cf_folder):
    run("bundle_models", "--cf-artifacts", str(cf_folder), "--label", "seed1")
    assert ModelVersion.objects.get().label == "seed1-cf"


def test_bundle_models_says_when_label_and_compression_were_not_applied(cf_folder):
    first = run("bundle_models", "--cf-artifacts", str(cf_folder), "--label", "w47")
    assert first.startswith("built") and "not applied" not in first
    again = run("bundle_models", "--cf-artifacts", str(cf_folder), "--label", "w48", "--compress", "lz4")
    assert again.startswith("already registered")
    assert "--label w48-cf: not applied; the same content is registered as w47-cf" in again
    assert "--compress lz4: not applied; the registered file is uncompressed" in again
    version = ModelVersion.objects.get()
    assert version.label == "w47-cf" and version.compression == ""


def test_bundle_models_help_says_what_verify_and_label_do():
    from modelstore.management.commands.bundle_models import Command

    parser = Command().create_parser("manage.py", "bundle_models")
    text = " ".join(parser.format_help().split())
    assert "always done" not in text
    assert "re-verify every registered version" in text and "new bundles are always verified" in text
    assert "w48-cf" in text and "--out FILE" in text


def test_bundle_models_out_writes_files_and_registers_nothing(cf_folder, cb_folder, tmp_path):
    from modelstore.bundles import open_bundle, verify_bundle

    out = run(
        "bundle_models",
        "--cf-artifacts",
        str(cf_folder),
        "--cb-artifacts",
        str(cb_folder),
        "--out",
        str(tmp_path / "shipped" / "model.joblib"),
        "--compress",
        "lz4",
    )
    assert ModelVersion.objects.count() == 0
    assert "(not registered)" in out
    for kind in ("cf", "cb"):
        path = tmp_path / "shipped" / f"model-{kind}.joblib"
        bundle = open_bundle(path)
        assert bundle.kind == kind and bundle.compression == "lz4"
        verify_bundle(bundle)
    # The written file registers as it is.
    run("import_bundle", str(tmp_path / "shipped" / "model-cf.joblib"), "--label", "shipped")
    assert ModelVersion.objects.get().n_users == 60


def test_command_line_activations_are_recorded_with_a_user(register, django_user_model, monkeypatch):
    from modelstore.models import ActivationEvent

    first = register("cf", factories.cf_array_set(seed=1), label="one")
    second = register("cf", factories.cf_array_set(seed=2), label="two")
    ops = django_user_model.objects.create_user("ops")
    monkeypatch.setattr("getpass.getuser", lambda: "nobody-here")

    out = run("activate_model", "one")
    assert "recorded as made from the command line" in out
    assert ActivationEvent.objects.first().user is None

    out = run("activate_model", "two", "--user", "ops")
    assert out.rstrip().endswith("recorded as ops")
    assert ActivationEvent.objects.first().user == ops

    # Without --user, the Django user named like the OS login is used when there is one.
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    run("rollback_model", "--kind", "cf")
    event = ActivationEvent.objects.first()
    assert (event.action, event.to_version, event.user) == ("rollback", first, ops)
    second.refresh_from_db()
    assert not second.is_active

    with pytest.raises(CommandError, match="no Django user named 'ghost'"):
        run("activate_model", "two", "--user", "ghost")


def test_import_bundle_says_when_label_was_not_applied(tmp_path):
    from modelstore.bundles import write_bundle

    path = tmp_path / "m.joblib"
    write_bundle(path, kind="cf", arrays=factories.cf_array_set())
    run("import_bundle", str(path), "--label", "first")
    out = run("import_bundle", str(path), "--label", "second")
    assert "--label second: not applied; the same content is registered as first" in out
