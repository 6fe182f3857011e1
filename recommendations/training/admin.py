"""Admin page to train CF and CB models from uploaded files and register their bundles.

There is no model behind it, so nothing is registered: the project's admin site
(``hybridrec.admin.HybridrecAdminSite``) adds ``page_urls`` to its URLs
(``admin:recommendations_train``) and, for those allowed to use it, ``app_list_entry`` to its
app list (the index and the navigation sidebar). Validation lives in
``forms.TrainingForm``; storing the uploads and queueing the work in
``tasks.training_queue``. After a post the run's own page (``admin:recommendations_training_run``)
shows whether it is queued or running, its stage, and the versions it made or matched; it
refreshes itself while the run is busy. Using the pages takes ``modelstore.add_modelversion``.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from modelstore.admin.pages import form_context
from modelstore.exceptions import BrokerUnavailable
from modelstore.models import ModelVersion
from modelstore.upload import admin_upload_door, upload_refusals

from .forms import TrainingForm
from .models import TrainingRun
from .tasks import training_queue

PERMISSION = "modelstore.add_modelversion"
URL_NAME = "recommendations_train"
RUN_URL_NAME = "recommendations_training_run"
# The page is named as the model versions list links to it, in its title, breadcrumbs and the app list.
PAGE_TITLE = "Train from a transactions file"
RUN_REFRESH_SECONDS = 2
RECENT_RUNS = 5
FIELDSETS = [
    ("Data", {"fields": ["interactions", "data_format", "items", "split_date"]}),
    (
        "Collaborative filtering (implicit ALS)",
        {"fields": ["factors", "iterations", "regularization", "alpha"]},
    ),
    ("Versions", {"fields": ["notes", "activate"]}),
]


def train_view(request, site):
    """Show the training form; on a valid post queue the training and go to the version list."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    if request.method == "POST":
        form = TrainingForm(request.POST, request.FILES, refusals=upload_refusals(request))
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    run = training_queue(
                        interactions_file=data["interactions"],
                        items_file=data["items"],
                        options=form.training_options(),
                        activate=data["activate"],
                        notes=data["notes"],
                        user=request.user,
                    )
            except BrokerUnavailable as exc:
                messages.error(request, f"Training was not started: {exc}.")
            else:
                then = "; the new versions become active once verified" if data["activate"] else ""
                messages.success(
                    request,
                    f"Training from “{data['interactions'].name}” is queued{then}. This page follows it.",
                )
                return HttpResponseRedirect(
                    reverse(f"admin:{RUN_URL_NAME}", args=[run.pk], current_app=site.name)
                )
    else:
        form = TrainingForm()
    context = form_context(
        site.get_model_admin(ModelVersion),
        request,
        PAGE_TITLE,
        form,
        FIELDSETS,
        form_id="training_form",
        submit_label="Train and build",
        runs=TrainingRun.objects.select_related("created_by")[:RECENT_RUNS],
    )
    return TemplateResponse(request, "admin/training/train.html", context)


def run_view(request, run_id, site):
    """Show a training run: queued or running (refreshing itself), then the versions it made or matched."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    run = TrainingRun.objects.filter(pk=run_id).select_related("created_by").first()
    if run is None:
        raise Http404(f"No training run {run_id}.")
    model_admin = site.get_model_admin(ModelVersion)
    may_list = request.user.has_perm("modelstore.view_modelversion") or request.user.has_perm(
        "modelstore.change_modelversion"
    )
    context = {
        **site.each_context(request),
        "opts": ModelVersion._meta,
        "title": f"Training run {run.pk}",
        "media": model_admin.media,
        "has_view_permission": may_list,
        "run": run,
        "outcome": run.outcome_lines(),
        "refresh_seconds": RUN_REFRESH_SECONDS if run.is_busy else None,
        "train_url": reverse(f"admin:{URL_NAME}", current_app=site.name),
    }
    return TemplateResponse(request, "admin/training/training_run.html", context)


def page_urls(site):
    """Return the URLs of the training page and the run page, wrapped by ``site``."""
    train = admin_upload_door(
        site.admin_view(lambda request: train_view(request, site)), permission=PERMISSION
    )
    run_page = site.admin_view(lambda request, run_id: run_view(request, run_id, site))
    return [
        path("recommendations/train/", train, name=URL_NAME),
        path("recommendations/train/<int:run_id>/", run_page, name=RUN_URL_NAME),
    ]


def app_list_entry(request, site):
    """Return the app-list entry of the training page, or None for those not allowed to train."""
    if not request.user.has_perm(PERMISSION):
        return None
    url = reverse(f"admin:{URL_NAME}", current_app=site.name)
    page = {
        "name": PAGE_TITLE,
        "object_name": "Training",
        "admin_url": url,
        "add_url": None,
        "view_only": False,
        "perms": {"add": True, "change": False, "delete": False, "view": True},
    }
    return {
        "name": "Recommendations",
        "app_label": "recommendations",
        "app_url": url,
        "has_module_perms": True,
        "models": [page],
    }
