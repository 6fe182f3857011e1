"""The experiments in the admin: the list, a start page, the experiment's page with its results, stop.

The admin only declares and calls the services: the start form checks through
``services.experiment_start``'s rules, the stop page calls ``services.experiment_stop``.
Experiments are never edited or deleted here: they are the audit of what customers were shown.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from modelstore.exceptions import RegistryError

from . import selectors, services
from .forms import StartForm, StopForm
from .models import Arm, Experiment, ExperimentChange
from .results import experiment_results

VIEW_PERMISSION = "modelstore.view_modelversion"


class ArmInline(admin.TabularInline):
    model = Arm
    fields = ("name", "version", "share", "is_control", "position")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ChangeInline(admin.TabularInline):
    model = ExperimentChange
    fields = ("at", "action", "by", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "audit entry"
    verbose_name_plural = "Audit"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Experiments: list, start, the page with arms, results and audit, and stop."""

    list_display = ("name", "kind", "status", "outcome", "started_at", "started_by", "ended_at")
    list_filter = ("kind", "status", "outcome")
    search_fields = ("name",)
    list_select_related = ("started_by",)
    fields = (
        "name",
        "kind",
        "status",
        "started_at",
        "started_by",
        "ended_at",
        "ended_by",
        "outcome",
        "promoted_version",
        "reason",
    )
    readonly_fields = fields
    inlines = [ArmInline, ChangeInline]
    change_list_template = "admin/experiments/experiment/change_list.html"
    change_form_template = "admin/experiments/experiment/change_form.html"

    # --- permissions: reading as versions are read, starting and stopping as they are activated ---

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm(VIEW_PERMISSION)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or request.user.has_perm(VIEW_PERMISSION)

    def has_add_permission(self, request):
        return False  # the start page, not the generic add form

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @staticmethod
    def has_run_permission(request):
        return services.can_run_experiments(request.user)

    # --- pages ----------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("start/", wrap(self.start_view), name="experiments_experiment_start"),
            path("<path:object_id>/stop/", wrap(self.stop_view), name="experiments_experiment_stop"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_run": self.has_run_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        experiment = self._get(request, object_id)
        extra = {
            "results": experiment_results(experiment),
            "withdrawn_arms": selectors.withdrawn_arms(experiment),
            "can_stop": self.has_run_permission(request) and experiment.status == Experiment.Status.RUNNING,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)

    def start_view(self, request):
        """Show the start form (GET); start the experiment (POST) and go to its page."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        form = StartForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            experiment = form.save()
            self.message_user(request, f"Experiment “{experiment.name}” started.", messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(experiment))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Start an experiment",
            "form": form,
        }
        return TemplateResponse(request, "admin/experiments/experiment/start.html", context)

    def stop_view(self, request, object_id):
        """Show the arms and results with the choices (GET); stop as chosen (POST)."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        experiment = self._get(request, object_id)
        form = StopForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            promote = request.POST.get("promote")
            try:
                services.experiment_stop(
                    experiment=experiment,
                    user=request.user,
                    keep_control=not promote,
                    promote=int(promote) if promote and promote.isdigit() else None,
                    reason=form.cleaned_data["reason"],
                )
            except RegistryError as exc:
                self.message_user(request, f"Not stopped: {exc}.", messages.ERROR)
                return HttpResponseRedirect(request.path)
            experiment.refresh_from_db()
            done = (
                f"promoted “{experiment.promoted_version.label}”"
                if experiment.promoted_version
                else "kept the control"
            )
            self.message_user(request, f"Experiment “{experiment.name}” stopped: {done}.", messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(experiment))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Stop {experiment.name}?",
            "object": experiment,
            "arms": experiment.arms.select_related("version").order_by("position"),
            "results": experiment_results(experiment),
            "withdrawn_arms": selectors.withdrawn_arms(experiment),
            "form": form,
            "is_running": experiment.status == Experiment.Status.RUNNING,
        }
        return TemplateResponse(request, "admin/experiments/experiment/stop_confirmation.html", context)

    def _get(self, request, object_id):
        experiment = self.get_object(request, unquote(object_id))
        if experiment is None:
            raise Http404(f"No experiment with id {object_id!r}.")
        return experiment

    def _change_url(self, experiment):
        return reverse(
            "admin:experiments_experiment_change", args=[experiment.pk], current_app=self.admin_site.name
        )
