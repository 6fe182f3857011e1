"""The admin's own pages for model versions: upload, build, activate (with a comparison), roll back.

Each view is a door into ``modelstore.services``; ``ModelVersionAdmin.get_urls`` wires them.
"""

from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import get_valid_filename

from . import selectors, services
from .bundles import BundleError
from .exceptions import BrokerUnavailable, RegistryError
from .formatting import human_bytes, vector_word
from .forms import BuildForm, UploadForm, artifact_roots
from .metrics import EvaluationResult, compare_metrics, version_metrics
from .models import ActivationEvent, ModelVersion
from .upload import upload_refusals

# Who an activation with no user was made by: the commands without --user, or a task they queued.
COMMAND_LINE = "command line"

REFRESH_SECONDS = 3


def metrics_table_html(metrics):
    """Return a version's metrics as an HTML table (strategies × metrics), or "" when there are none."""
    result = EvaluationResult.from_json(metrics)
    if result is None:
        return ""
    names = result.metric_names()
    head = format_html_join("", "<th>{}</th>", ((name,) for name in names))
    rows = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        (
            (
                strategy,
                format_html_join(
                    "", "<td>{}</td>", ((f"{values[n]:.4f}" if n in values else "—",) for n in names)
                ),
            )
            for strategy, values in sorted(result.strategies.items())
        ),
    )
    k, test = result.k, result.test_description
    caption = " · ".join(
        part for part in (f"measured at k = {k}" if k else "", f"on {test}" if test else "") if part
    )
    sha256 = result.test_sha256
    return format_html(
        '<table class="hr-metrics"><caption title="{}">{}</caption><thead><tr><th></th>{}</tr></thead>'
        "<tbody>{}</tbody></table>",
        f"sha256 of the test file: {sha256}" if sha256 else "",
        caption,
        head,
        rows,
    )


CHART_METRICS = ("ndcg", "precision", "recall", "map")
CHART_LABEL_WIDTH = 70
CHART_BAR_WIDTH = 300
CHART_BAR_HEIGHT = 12
CHART_GAP = 8


def metrics_chart_context(version, active):
    """Return the bars of the offline-metrics charts: per metric, per strategy, this version beside the active one.

    The active version's bars are left out when its metrics were measured on other test data or k.
    """
    result = version_metrics(version)
    if result is None:
        return None
    mine = result.strategies
    comparable = (
        active is not None and active.pk != version.pk and compare_metrics(version, active).comparable
    )
    theirs = version_metrics(active).strategies if comparable else {}
    series = [(version.label, "hr-bar-this", mine)] + (
        [(active.label, "hr-bar-active", theirs)] if theirs else []
    )
    charts = []
    for metric in CHART_METRICS:
        strategies = sorted(name for name, values in mine.items() if metric in values)
        if not strategies:
            continue
        top = max(values[metric] for _, _, source in series for values in source.values() if metric in values)
        scale = CHART_BAR_WIDTH / top if top > 0 else 0
        rows, y = [], 0
        for strategy in strategies:
            bars = []
            for offset, (label, css, source) in enumerate(series):
                value = source.get(strategy, {}).get(metric)
                if value is None:
                    continue
                width = max(value * scale, 1)
                bars.append(
                    {
                        "label": label,
                        "css": css,
                        "value": f"{value:.4f}",
                        "y": y + offset * (CHART_BAR_HEIGHT + 2),
                        "width": round(width, 1),
                        "text_x": round(CHART_LABEL_WIDTH + width + 4, 1),
                    }
                )
            rows.append({"strategy": strategy, "y": y, "bars": bars})
            y += len(series) * (CHART_BAR_HEIGHT + 2) + CHART_GAP
        charts.append({"metric": metric, "rows": rows, "height": y})
    return {
        "charts": charts,
        "series": [(label, css) for label, css, _ in series],
        "k": result.k,
        "test": result.test_description,
        "label_width": CHART_LABEL_WIDTH,
        "bar_height": CHART_BAR_HEIGHT,
        "width": CHART_LABEL_WIDTH + CHART_BAR_WIDTH + 60,
        "active_left_out": active is not None and active.pk != version.pk and not comparable,
        "active": active,
    }


def metrics_chart_html(version, active):
    """Return the inline SVG charts of a version's offline metrics, or "" when it has none."""
    context = metrics_chart_context(version, active)
    if context is None:
        return ""
    return render_to_string("admin/modelstore/modelversion/metrics_chart.html", context)


TIMELINE_LENGTH = 20


def activation_timeline(version):
    """Return the latest activations and rollbacks of a version's kind, newest first, marking this version's."""
    events = ActivationEvent.objects.filter(kind=version.kind).select_related("user")[:TIMELINE_LENGTH]
    return [
        {
            "event": event,
            "when": _when(event.created_at),
            "who": event.user.get_username() if event.user_id else COMMAND_LINE,
            "involves": version.pk in (event.to_version_id, event.from_version_id),
            "to_this": event.to_version_id == version.pk,
        }
        for event in events
    ]


def activation_timeline_html(version):
    """Return the activation timeline of a version's kind as HTML, or "" when nothing was activated."""
    entries = activation_timeline(version)
    if not entries:
        return ""
    return render_to_string(
        "admin/modelstore/modelversion/timeline.html", {"entries": entries, "version": version}
    )


# --- shared context ---------------------------------------------------------------------------


def form_context(model_admin, request, title, form, fieldsets, *, form_id, submit_label, **extra):
    """Return the context of a form page rendered with ``form_page.html`` (or a template extending it)."""
    return _context(
        model_admin,
        request,
        title,
        adminform=helpers.AdminForm(form, fieldsets, {}),
        form=form,
        form_id=form_id,
        submit_label=submit_label,
        errors=helpers.AdminErrorList(form, []),
        **extra,
    )


def _context(model_admin, request, title, **extra):
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "media": model_admin.media,
        "has_view_permission": model_admin.has_view_permission(request),
        **extra,
    }


def _changelist_url(model_admin):
    opts = model_admin.opts
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=model_admin.admin_site.name
    )


def _change_url(model_admin, version):
    opts = model_admin.opts
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change",
        args=[version.pk],
        current_app=model_admin.admin_site.name,
    )


def _get_version(model_admin, request, object_id):
    version = model_admin.get_object(request, unquote(object_id))
    if version is None:
        raise Http404(f"No model version with id {object_id!r}.")
    return version


def _when(value):
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


# --- upload and build -------------------------------------------------------------------------


def upload_view(model_admin, request):
    """Upload a bundle file, register it and queue its verification."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES, refusals=upload_refusals(request))
        if form.is_valid():
            try:
                registered = services.version_upload(
                    uploaded_file=form.cleaned_data["file"],
                    kind=form.cleaned_data["kind"] or None,
                    label=form.cleaned_data["label"],
                    notes=form.cleaned_data["notes"],
                    user=request.user,
                    verify=services.QUEUED,
                )
            except BrokerUnavailable as exc:
                model_admin.message_user(request, f"Not uploaded: {exc}. Try again later.", messages.ERROR)
                form = UploadForm()
            except (BundleError, RegistryError) as exc:
                form.add_refusal(exc)
            else:
                version = registered.version
                if registered.created:
                    model_admin.message_user(
                        request,
                        f"Uploaded “{version.label}” ({human_bytes(version.size_bytes)}); "
                        "it is being verified and this page shows the result.",
                        messages.SUCCESS,
                    )
                else:
                    model_admin.message_user(
                        request,
                        f"This content is already registered as “{version.label}”; nothing new was stored.",
                        messages.WARNING,
                    )
                return HttpResponseRedirect(_change_url(model_admin, version))
    else:
        form = UploadForm()
    fieldsets = [(None, {"fields": ["file", "kind", "label", "notes"]})]
    context = form_context(
        model_admin,
        request,
        "Upload a model bundle",
        form,
        fieldsets,
        form_id="upload_form",
        submit_label="Upload and verify",
    )
    return TemplateResponse(request, "admin/modelstore/modelversion/upload.html", context)


def build_view(model_admin, request):
    """Build CF and/or CB bundles from artifact folders under the artifact roots."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    if request.method == "POST":
        form = BuildForm(request.POST)
        if form.is_valid():
            for kind, folder in form.cleaned_data["folders"].items():
                try:
                    services.version_queue_build(
                        kind=kind,
                        artifacts_path=folder,
                        compress=form.cleaned_data["compress"],
                        notes=form.cleaned_data["notes"],
                        activate=form.cleaned_data["activate"],
                        user=request.user,
                    )
                except BrokerUnavailable as exc:
                    model_admin.message_user(request, f"Not built: {exc}. Try again later.", messages.ERROR)
                    break
                then = "; it becomes active once verified" if form.cleaned_data["activate"] else ""
                model_admin.message_user(
                    request, f"Building a {kind} bundle from {folder.name}{then}.", messages.SUCCESS
                )
            return HttpResponseRedirect(_changelist_url(model_admin))
    else:
        form = BuildForm()
    fieldsets = [
        ("Collaborative filtering", {"fields": ["cf_folder", "cf_path"]}),
        ("Content-based", {"fields": ["cb_folder", "cb_path"]}),
        ("Bundle", {"fields": ["compression", "level", "notes", "activate"]}),
    ]
    context = form_context(
        model_admin,
        request,
        "Build bundles from artifact folders",
        form,
        fieldsets,
        form_id="build_form",
        submit_label="Build",
        artifact_roots=[str(root) for root in artifact_roots()],
    )
    return TemplateResponse(request, "admin/modelstore/modelversion/build.html", context)


# --- activate and roll back -------------------------------------------------------------------


def _facts(version):
    """Return ``{key: (text, number or None)}`` for one version's side of the comparison (or None)."""
    if version is None:
        return None
    metrics = version_metrics(version)
    ndcg = metrics.headline_ndcg(version.kind) if metrics else None
    cf = version.kind == ModelVersion.Kind.CF
    return {
        "label": (version.label, None),
        "status": (version.get_status_display(), None),
        "users": (f"{version.n_users:,}", version.n_users) if cf else ("—", None),
        "items": (f"{version.n_items:,}", version.n_items),
        "recommendations": (f"{version.n_recommendations:,}", version.n_recommendations),
        "factors": (f"{version.n_factors:,}", version.n_factors),
        "size": (human_bytes(version.size_bytes), version.size_bytes),
        "compression": (version.compression or "none (memory-mapped)", None),
        "layout": (version.source_layout or "—", None),
        "ndcg": (
            f"{ndcg[0]:.4f} ({ndcg[2]}{f' @{ndcg[1]}' if ndcg[1] else ''})" if ndcg else "—",
            ndcg[0] if ndcg else None,
        ),
        "created": (_when(version.created_at), None),
        "created_by": (version.created_by.get_username() if version.created_by_id else "—", None),
        "activated": (_when(version.activated_at), None),
    }


def _fact_labels(version):
    """Return ``(key, title)`` of the comparison rows; CB rows speak of neighbours and terms or dimensions."""
    if version.kind == ModelVersion.Kind.CF:
        counts = (
            ("users", "Users"),
            ("items", "Items"),
            ("recommendations", "Recommendations"),
            ("factors", "Factors"),
        )
    else:
        counts = (
            ("items", "Items"),
            ("recommendations", "Precomputed neighbours"),
            ("factors", vector_word(version).capitalize()),
        )
    return (
        ("label", "Label"),
        ("status", "Status"),
        *counts,
        ("size", "Size"),
        ("compression", "Compression"),
        ("layout", "Source layout"),
        ("ndcg", "NDCG"),
        ("created", "Created"),
        ("created_by", "Created by"),
        ("activated", "Last activated"),
    )


def _difference(key, mine, theirs):
    """Return the candidate minus the active value as text ("+120", "−1.2 MiB", "+0.0150 (+12.0 %)"), or ""."""
    if mine is None or theirs is None or mine == theirs:
        return ""
    delta = mine - theirs
    sign = "+" if delta > 0 else "−"
    if key == "size":
        return f"{sign}{human_bytes(abs(delta))}"
    if key == "ndcg":
        share = f" ({sign}{abs(delta) / theirs * 100:.1f} %)" if theirs else ""
        return f"{sign}{abs(delta):.4f}{share}"
    return f"{sign}{abs(delta):,}"


@dataclass
class FactComparison:
    """The side-by-side table: rows that differ, and identical rows (shown folded)."""

    differing: list = field(default_factory=list)  # (title, candidate, active, difference)
    identical: list = field(default_factory=list)  # (title, value)


def compare_facts(version, other):
    """Compare two versions' facts row by row; without ``other`` every row is listed as differing."""
    mine, theirs = _facts(version), _facts(other)
    comparison = FactComparison()
    for key, title in _fact_labels(version):
        text, number = mine[key]
        if theirs is None:
            comparison.differing.append((title, text, "", ""))
            continue
        their_text, their_number = theirs[key]
        if text == their_text:
            comparison.identical.append((title, text))
        else:
            comparison.differing.append((title, text, their_text, _difference(key, number, their_number)))
    return comparison


def activate_view(model_admin, request, object_id):
    """Show a version beside the active one of its kind; on POST make it the active one."""
    if not model_admin.has_activate_permission(request):
        raise PermissionDenied
    version = _get_version(model_admin, request, object_id)
    if request.method == "POST":
        try:
            event = services.version_activate(version=version, user=request.user)
        except RegistryError as exc:
            model_admin.message_user(request, f"Not activated: {exc}.", messages.ERROR)
            return HttpResponseRedirect(request.path)
        if event is None:
            model_admin.message_user(request, f"“{version.label}” is already active.", messages.INFO)
        else:
            was = f" (was “{event.from_label}”)" if event.from_label else ""
            model_admin.message_user(
                request, f"“{version.label}” is now the active {version.kind} version{was}.", messages.SUCCESS
            )
        return HttpResponseRedirect(_changelist_url(model_admin))

    active = selectors.active_version(version.kind)
    context = _context(
        model_admin,
        request,
        f"Activate {version.label}?",
        object=version,
        original=version,
        active=active,
        facts=compare_facts(version, active if active and active.pk != version.pk else None),
        metrics=compare_metrics(version, active) if active and active.pk != version.pk else None,
        is_ready=version.status == ModelVersion.Status.READY,
        is_active=version.is_active,
    )
    return TemplateResponse(request, "admin/modelstore/modelversion/activate_confirmation.html", context)


def rollback_view(model_admin, request, kind):
    """Show what a rollback of ``kind`` would switch (GET); re-activate the previous version (POST)."""
    if not model_admin.has_activate_permission(request):
        raise PermissionDenied
    if kind not in ModelVersion.Kind.values:
        raise Http404(f"No model kind {kind!r}.")
    if request.method == "POST":
        try:
            event = services.version_rollback(kind=kind, user=request.user)
        except RegistryError as exc:
            model_admin.message_user(request, f"Not rolled back: {exc}.", messages.ERROR)
        else:
            model_admin.message_user(
                request,
                f"Rolled {kind} back from “{event.from_label}” to “{event.to_label}”.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(_changelist_url(model_admin))

    target, active = selectors.rollback_target(kind), selectors.active_version(kind)
    ready = target is not None and target.status == ModelVersion.Status.READY
    context = _context(
        model_admin,
        request,
        f"Roll {kind.upper()} back to {target.label}?"
        if target
        else f"Nothing to roll {kind.upper()} back to",
        kind=kind,
        target=target,
        active=active,
        ready=ready,
        facts=compare_facts(target, active) if target else None,
        metrics=compare_metrics(target, active) if target else None,
    )
    return TemplateResponse(request, "admin/modelstore/modelversion/rollback_confirmation.html", context)


def rollback_choices(model_admin, request):
    """Return ``[(kind, kind display, active version, rollback target)]`` for the changelist buttons."""
    if not model_admin.has_activate_permission(request):
        return []
    choices = []
    for kind, display in ModelVersion.Kind.choices:
        target = selectors.rollback_target(kind)
        if target is not None:
            choices.append((kind, display, selectors.active_version(kind), target))
    return choices


# --- download ----------------------------------------------------------------------------------


def download_view(model_admin, request, object_id):
    """Send a version's stored bundle file as an attachment."""
    version = _get_version(model_admin, request, object_id)
    if not model_admin.has_view_permission(request, version):
        raise PermissionDenied
    if not version.file or not default_storage.exists(version.file.name):
        raise Http404("This version has no stored file.")
    name = get_valid_filename(f"{version.label}.joblib") or f"version-{version.pk}.joblib"
    return FileResponse(default_storage.open(version.file.name, "rb"), as_attachment=True, filename=name)
