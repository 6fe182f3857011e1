"""The model version admin: the list, the version page, the actions and deletion.

It declares; its own pages live in ``pages``, validation in ``modelstore.forms`` and every
change goes through ``modelstore.services``.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from .. import selectors, services
from ..exceptions import RegistryError, VersionIsActive
from ..formatting import human_bytes, version_contents
from ..forms import ModelVersionForm
from ..metrics import version_metrics
from ..models import ModelVersion
from .pages import REFRESH_SECONDS, VersionPages
from .panels import activation_timeline_html, metrics_chart_html, metrics_table_html, username_or_command_line

# Labels up to this long stay on one line in the list; longer ones wrap inside the column.
ONE_LINE_LABEL_CHARS = 24


def _short_datetime(value):
    if not value:
        return "—"
    return format_html('<span class="hr-when">{}</span>', date_format(timezone.localtime(value), "Y-m-d H:i"))


def _pretty_json(value):
    return format_html(
        '<pre class="hr-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True, default=str)
    )


class ActiveFilter(admin.SimpleListFilter):
    """Filter on ``is_active``, titled for people."""

    title = "active"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "Active"), ("no", "Not active")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(is_active=self.value() == "yes")
        return queryset


@admin.register(ModelVersion)
class ModelVersionAdmin(VersionPages, admin.ModelAdmin):
    """Declare the version list, the version page and the actions; the own pages are ``VersionPages``."""

    form = ModelVersionForm
    list_display = (
        "version_label",
        "kind_code",
        "state",
        "size_and_compression",
        "contents",
        "ndcg",
        "created_and_activated",
    )
    list_display_links = ("version_label",)
    list_filter = ("kind", "status", ActiveFilter)
    search_fields = ("label", "^sha256", "notes")
    ordering = ("-created_at", "-id")
    list_select_related = ("activated_by",)
    list_per_page = 50
    actions = ("verify_selected", "activate_selected", "delete_selected")
    fieldsets = (
        (None, {"fields": ("label", "notes")}),
        ("State", {"fields": ("kind", "status_badge", "active_state", "error_text", "activated")}),
        (
            "File",
            {
                "fields": (
                    "download_link",
                    "size",
                    "compression_display",
                    "format_version",
                    "source_layout",
                    "sha256",
                    "uploaded_sha256",
                    "content_sha256",
                )
            },
        ),
        ("Contents", {"fields": ("contents_detail",)}),
        ("Libraries", {"fields": ("joblib_version", "numpy_version", "pandas_version")}),
        ("History", {"fields": ("created_at", "created_by", "verified_at")}),
        ("Offline metrics", {"fields": ("metrics_chart", "metrics_table", "metrics_json")}),
        ("Activations of this kind", {"fields": ("activation_timeline",)}),
        ("Metadata", {"classes": ("collapse",), "fields": ("metadata_json",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        """Return every field of the fieldsets except those the form edits (label and notes)."""
        editable = set(ModelVersionForm.Meta.fields)
        return [name for _, options in self.fieldsets for name in options["fields"] if name not in editable]

    class Media:
        css = {"all": ("modelstore/admin.css",)}

    # --- permissions -------------------------------------------------------------------------

    def has_activate_permission(self, request):
        """Return True if the user may activate and roll back versions."""
        return request.user.has_perm(f"{self.opts.app_label}.activate_modelversion")

    def has_delete_permission(self, request, obj=None):
        if obj is not None and services.version_deletion_refusal(obj):
            return False  # hides the delete link; delete_view explains the refusal
        return super().has_delete_permission(request, obj)

    # --- list columns ------------------------------------------------------------------------

    @admin.display(description="Kind", ordering="kind")
    def kind_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.get_kind_display(), obj.kind.upper())

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="hr-status hr-status-{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="Status", ordering="status")
    def state(self, obj):
        """Status badge, the active badge and, for a failed version, the reason."""
        badges = format_html("{} {}", self.status_badge(obj), self.active_badge(obj))
        if obj.error:
            error = obj.error if len(obj.error) <= 240 else obj.error[:239] + "…"
            return format_html('{}<div class="hr-error" title="{}">{}</div>', badges, obj.error, error)
        return badges

    @admin.display(description="Size", ordering="size_bytes")
    def size_and_compression(self, obj):
        if obj.size_bytes is None:
            return "—"
        return format_html(
            '{}<div class="hr-muted">{}</div>', human_bytes(obj.size_bytes), obj.compression or "plain"
        )

    @admin.display(description="Active", ordering="is_active", empty_value="")
    def active_badge(self, obj):
        return mark_safe('<span class="hr-badge-active">active</span>') if obj.is_active else ""

    @admin.display(description="Active")
    def active_state(self, obj):
        """Say on a version's page whether it is active, rather than leave the row empty."""
        return self.active_badge(obj) or "no"

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, obj):
        return human_bytes(obj.size_bytes)

    @admin.display(description="Label", ordering="label")
    def version_label(self, obj):
        css = "hr-label-long" if len(obj.label) > ONE_LINE_LABEL_CHARS else "hr-label"
        return format_html('<span class="{}">{}</span>', css, obj.label)

    @admin.display(description="Contents")
    def contents(self, obj):
        if obj.status in selectors.BUSY_STATUSES and not obj.n_items:
            return "—"
        return format_html('<span class="hr-contents">{}</span>', " · ".join(version_contents(obj)))

    @admin.display(description="Contents")
    def contents_detail(self, obj):
        return ", ".join(version_contents(obj)) if obj.n_items else "—"

    @admin.display(description="Created", ordering="created_at")
    def created_and_activated(self, obj):
        if obj.activated_at is None:
            return _short_datetime(obj.created_at)
        return format_html(
            '{}<div class="hr-muted">activated {} by {}</div>',
            _short_datetime(obj.created_at),
            _short_datetime(obj.activated_at),
            username_or_command_line(obj.activated_by),
        )

    @admin.display(description="Compression", ordering="compression")
    def compression_display(self, obj):
        return obj.compression or "none"

    @admin.display(description="NDCG")
    def ndcg(self, obj):
        metrics = version_metrics(obj)
        headline = metrics.headline_ndcg(obj.kind) if metrics else None
        if headline is None:
            return "—"
        value, k, strategy = headline
        return format_html('<span title="{} strategy, k = {}">{}</span>', strategy, k or "?", f"{value:.4f}")

    @admin.display(description="Activated", ordering="activated_at")
    def activated(self, obj):
        if obj.activated_at is None:
            return "—"
        who = username_or_command_line(obj.activated_by)
        return format_html('{}<div class="hr-muted">by {}</div>', _short_datetime(obj.activated_at), who)

    # --- version page ------------------------------------------------------------------------

    @admin.display(description="Error")
    def error_text(self, obj):
        return format_html('<pre class="hr-error-text">{}</pre>', obj.error) if obj.error else "—"

    @admin.display(description="File")
    def download_link(self, obj):
        if not obj.file:
            return "—"
        url = reverse(
            "admin:modelstore_modelversion_download", args=[obj.pk], current_app=self.admin_site.name
        )
        return format_html('<a href="{}">Download</a> <span class="hr-muted">{}</span>', url, obj.file.name)

    @admin.display(description="Chart")
    def metrics_chart(self, obj):
        active = selectors.active_version(obj.kind)
        return metrics_chart_html(obj, active) or "—"

    @admin.display(description="Metrics")
    def metrics_table(self, obj):
        return metrics_table_html(obj.metrics) or "—"

    @admin.display(description="Timeline")
    def activation_timeline(self, obj):
        return activation_timeline_html(obj) or "No activations yet."

    @admin.display(description="Metrics (JSON)")
    def metrics_json(self, obj):
        return _pretty_json(obj.metrics) if obj.metrics else "—"

    @admin.display(description="Metadata")
    def metadata_json(self, obj):
        return _pretty_json(obj.metadata) if obj.metadata else "—"

    def save_model(self, request, obj, form, change):
        # Only what the form edits: a task may be changing the status at the same moment.
        obj.save(update_fields=["label", "notes"])

    # --- actions ---------------------------------------------------------------------------

    @admin.action(description="Verify the selected versions", permissions=["change"])
    def verify_selected(self, request, queryset):
        queued, skipped = [], []
        for version in queryset:
            if not version.file:
                skipped.append(version.label)
                continue
            try:
                services.version_queue_verify(version=version, user=request.user)
            except RegistryError as exc:  # still building, or the task queue is down
                self.message_user(request, f"Not verified: {version.label}: {exc}.", messages.ERROR)
                continue
            self.log_change(request, version, "Verification queued.")
            queued.append(version.label)
        if queued:
            self.message_user(request, f"Verification queued for {', '.join(queued)}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Not verified (no file yet): {', '.join(skipped)}.", messages.WARNING)

    @admin.action(description="Activate the selected version…", permissions=["activate"])
    def activate_selected(self, request, queryset):
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.WARNING)
            return None
        url = reverse(
            "admin:modelstore_modelversion_activate", args=[versions[0].pk], current_app=self.admin_site.name
        )
        return HttpResponseRedirect(url)

    @admin.action(description="Delete the selected versions", permissions=["delete"])
    def delete_selected(self, request, queryset):
        refusals = [str(refusal) for refusal in map(services.version_deletion_refusal, queryset) if refusal]
        if refusals:
            self.message_user(request, f"Nothing was deleted: {'; '.join(refusals)}.", messages.ERROR)
            return None
        return django_delete_selected(self, request, queryset)

    def delete_queryset(self, request, queryset):
        for version in queryset:
            self.delete_model(request, version)

    def delete_model(self, request, obj):
        try:
            services.version_delete(version=obj)
        except VersionIsActive as exc:
            self.message_user(request, f"Not deleted: {exc}.", messages.ERROR)

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        refusal = services.version_deletion_refusal(obj) if obj is not None else None
        if refusal is not None and super().has_delete_permission(request, obj):
            self.message_user(request, f"{refusal}.", messages.ERROR)
            return HttpResponseRedirect(
                reverse(
                    "admin:modelstore_modelversion_change", args=[obj.pk], current_app=self.admin_site.name
                )
            )
        return super().delete_view(request, object_id, extra_context)

    # --- pages -----------------------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "refresh_seconds": REFRESH_SECONDS if selectors.any_version_busy() else None,
            "rollbacks": self.rollback_choices(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if obj is not None:
            busy = obj.status in selectors.BUSY_STATUSES
            extra_context["refresh_seconds"] = REFRESH_SECONDS if busy else None
            extra_context["show_save_and_add_another"] = False  # "add" is an upload, not a copy
            extra_context["can_activate"] = (
                self.has_activate_permission(request)
                and obj.status == ModelVersion.Status.READY
                and not obj.is_active
            )
        return super().change_view(request, object_id, form_url, extra_context)
