"""The admin's own pages for model versions: upload, build, activate (with a comparison), roll back, download."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import get_valid_filename

from .. import selectors, services
from ..bundles import BundleError
from ..exceptions import BrokerUnavailable, RegistryError
from ..formatting import human_bytes
from ..forms import BuildForm, UploadForm, artifact_roots
from ..metrics import compare_metrics
from ..models import ModelVersion
from ..upload import admin_upload_door, upload_refusals
from .comparison import compare_facts

REFRESH_SECONDS = 3


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


class VersionPages:
    """The model version admin's own pages, each a door into ``modelstore.services``.

    Mixed into ``ModelVersionAdmin``; ``get_urls`` wires each page as
    ``django.contrib.auth.admin.UserAdmin`` wires ``user_change_password``. "Add" is the upload.
    """

    # --- upload and build -------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        """Upload a bundle file, register it and queue its verification."""
        if not self.has_add_permission(request):
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
                    self.message_user(request, f"Not uploaded: {exc}. Try again later.", messages.ERROR)
                    form = UploadForm()
                except (BundleError, RegistryError) as exc:
                    form.add_refusal(exc)
                else:
                    version = registered.version
                    if registered.created:
                        self.message_user(
                            request,
                            f"Uploaded “{version.label}” ({human_bytes(version.size_bytes)}); "
                            "it is being verified and this page shows the result.",
                            messages.SUCCESS,
                        )
                    else:
                        unapplied = selectors.version_unapplied_options(
                            version, label=form.cleaned_data["label"], notes=form.cleaned_data["notes"]
                        )
                        kept = "".join(
                            f" The {field} you gave was not applied: it keeps its own." for field in unapplied
                        )
                        self.message_user(
                            request,
                            f"This content is already registered as “{version.label}”; nothing new was stored.{kept}",
                            messages.WARNING,
                        )
                    return HttpResponseRedirect(_change_url(self, version))
        else:
            form = UploadForm()
        fieldsets = [(None, {"fields": ["file", "kind", "label", "notes"]})]
        context = form_context(
            self,
            request,
            "Upload a model bundle",
            form,
            fieldsets,
            form_id="upload_form",
            submit_label="Upload and verify",
        )
        return TemplateResponse(request, "admin/modelstore/modelversion/upload.html", context)

    def build_view(self, request):
        """Build CF and/or CB bundles from artifact folders under the artifact roots."""
        if not self.has_add_permission(request):
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
                            factors_dtype=form.cleaned_data["factors_dtype"],
                            notes=form.cleaned_data["notes"],
                            activate=form.cleaned_data["activate"],
                            user=request.user,
                        )
                    except BrokerUnavailable as exc:
                        self.message_user(request, f"Not built: {exc}. Try again later.", messages.ERROR)
                        break
                    then = "; it becomes active once verified" if form.cleaned_data["activate"] else ""
                    self.message_user(
                        request, f"Building a {kind} bundle from {folder.name}{then}.", messages.SUCCESS
                    )
                return HttpResponseRedirect(_changelist_url(self))
        else:
            form = BuildForm()
        fieldsets = [
            ("Collaborative filtering", {"fields": ["cf_folder", "cf_path"]}),
            ("Content-based", {"fields": ["cb_folder", "cb_path"]}),
            ("Bundle", {"fields": ["compression", "level", "factors_dtype", "notes", "activate"]}),
        ]
        context = form_context(
            self,
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

    def activate_view(self, request, object_id):
        """Show a version beside the active one of its kind; on POST make it the active one."""
        if not self.has_activate_permission(request):
            raise PermissionDenied
        version = _get_version(self, request, object_id)
        if request.method == "POST":
            try:
                event = services.version_activate(version=version, user=request.user)
            except RegistryError as exc:
                self.message_user(request, f"Not activated: {exc}.", messages.ERROR)
                return HttpResponseRedirect(request.path)
            if event is None:
                self.message_user(request, f"“{version.label}” is already active.", messages.INFO)
            else:
                was = f" (was “{event.from_label}”)" if event.from_label else ""
                self.message_user(
                    request,
                    f"“{version.label}” is now the active {version.kind} version{was}.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(_changelist_url(self))

        active = selectors.active_version(version.kind)
        context = _context(
            self,
            request,
            f"Activate {version.label}?",
            object=version,
            original=version,
            active=active,
            facts=compare_facts(version, active if active and active.pk != version.pk else None),
            metrics=compare_metrics(version, active) if active and active.pk != version.pk else None,
            is_ready=version.status == ModelVersion.Status.READY,
            is_active=version.is_active,
            refusal=None if version.is_active else services.version_activation_refusal(version),
        )
        return TemplateResponse(request, "admin/modelstore/modelversion/activate_confirmation.html", context)

    def rollback_view(self, request, kind):
        """Show what a rollback of ``kind`` would switch (GET); re-activate the previous version (POST)."""
        if not self.has_activate_permission(request):
            raise PermissionDenied
        if kind not in ModelVersion.Kind.values:
            raise Http404(f"No model kind {kind!r}.")
        if request.method == "POST":
            try:
                event = services.version_rollback(kind=kind, user=request.user)
            except RegistryError as exc:
                self.message_user(request, f"Not rolled back: {exc}.", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Rolled {kind} back from “{event.from_label}” to “{event.to_label}”.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(_changelist_url(self))

        target, active = selectors.rollback_target(kind), selectors.active_version(kind)
        ready = target is not None and target.status == ModelVersion.Status.READY
        context = _context(
            self,
            request,
            f"Roll {kind.upper()} back to {target.label}?"
            if target
            else f"Nothing to roll {kind.upper()} back to",
            kind=kind,
            target=target,
            active=active,
            ready=ready,
            refusal=services.version_activation_refusal(target) if target else None,
            facts=compare_facts(target, active) if target else None,
            metrics=compare_metrics(target, active) if target else None,
        )
        return TemplateResponse(request, "admin/modelstore/modelversion/rollback_confirmation.html", context)

    def rollback_choices(self, request):
        """Return ``[(kind, kind display, active version, rollback target)]`` for the changelist buttons."""
        if not self.has_activate_permission(request):
            return []
        choices = []
        for kind, display in ModelVersion.Kind.choices:
            target = selectors.rollback_target(kind)
            if target is not None:
                choices.append((kind, display, selectors.active_version(kind), target))
        return choices

    # --- download ----------------------------------------------------------------------------------

    def download_view(self, request, object_id):
        """Send a version's stored bundle file as an attachment."""
        version = _get_version(self, request, object_id)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        if not version.file or not default_storage.exists(version.file.name):
            raise Http404("This version has no stored file.")
        name = get_valid_filename(f"{version.label}.joblib") or f"version-{version.pk}.joblib"
        return FileResponse(default_storage.open(version.file.name, "rb"), as_attachment=True, filename=name)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        upload = admin_upload_door(wrap(self.add_view), permission="modelstore.add_modelversion")
        own = [
            path("add/", upload, name=f"{prefix}_add"),
            path("build/", wrap(self.build_view), name=f"{prefix}_build"),
            path("rollback/<str:kind>/", wrap(self.rollback_view), name=f"{prefix}_rollback"),
            path("<path:object_id>/activate/", wrap(self.activate_view), name=f"{prefix}_activate"),
            path("<path:object_id>/download/", wrap(self.download_view), name=f"{prefix}_download"),
        ]
        default_add = f"{prefix}_add"
        return own + [url for url in super().get_urls() if getattr(url, "name", None) != default_add]
