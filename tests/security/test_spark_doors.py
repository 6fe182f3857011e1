"""Hostile saved Spark ALSModel folders through ``bundle_models --from-spark-als``.

Each must end in a clean refusal within seconds: a ``CommandError`` of one line, a form error,
or a row (and a training run) marked failed with the reason; no bundle file stored, nothing
outside the folder opened.
"""

import pytest

from modelstore.models import ModelVersion

from .hostile_readers import SPARK_KINDS, hostile_spark_folder
from .reader_doors import queued_at_once, refused_command, small_budget, stored_bundles  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("small_budget", "queued_at_once")]


@pytest.mark.parametrize("kind", sorted(SPARK_KINDS))
def test_bundle_models_refuses_a_hostile_spark_folder(kind, tmp_path, settings):
    folder = hostile_spark_folder(kind, tmp_path / "spark" / "als", tmp_path / "outside")

    reason = refused_command("bundle_models", "--from-spark-als", str(folder))

    assert ModelVersion.objects.count() == 0 and stored_bundles(settings) == []
    if kind == "spark_link_out":
        assert "links outside the folder" in reason
    if kind == "spark_many_items":
        assert "budget" in reason and "40,000 items" in reason
