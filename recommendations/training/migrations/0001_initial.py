"""TrainingRun, moved here from the recommendations app: its table (made there) is kept.

Its content type moves with it, so permissions given on it stay given.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor, *, old="recommendations", new="training"):
    """Relabel the TrainingRun content type from the ``old`` app to the ``new`` one, if not there yet."""
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(
        schema_editor.connection.alias
    )
    if not content_types.filter(app_label=new, model="trainingrun").exists():
        content_types.filter(app_label=old, model="trainingrun").update(app_label=new)


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, old="training", new="recommendations")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("recommendations", "0001_training_run"),
        ("modelstore", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(move_content_type, move_content_type_back)],
            state_operations=[
                migrations.CreateModel(
                    name="TrainingRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("source", models.CharField(help_text="The uploaded file name(s).", max_length=255)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("running", "Running"),
                                    ("done", "Done"),
                                    ("failed", "Failed"),
                                ],
                                default="queued",
                                max_length=10,
                            ),
                        ),
                        (
                            "stage",
                            models.CharField(
                                blank=True, help_text="What the run is doing now.", max_length=255
                            ),
                        ),
                        ("step", models.PositiveSmallIntegerField(default=0)),
                        ("steps", models.PositiveSmallIntegerField(default=5)),
                        (
                            "outcome",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text='Per kind: {"id", "made": true when a new version, false when it matched one}.',
                            ),
                        ),
                        ("error", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "cb_version",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="modelstore.modelversion",
                            ),
                        ),
                        (
                            "cf_version",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="modelstore.modelversion",
                            ),
                        ),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-created_at", "-id"],
                        "db_table": "recommendations_trainingrun",
                    },
                ),
            ],
        ),
    ]
