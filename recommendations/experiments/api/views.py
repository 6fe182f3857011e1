"""The experiments API: list, start, show (with results) and stop, as doors into the services.

Reading takes the permission reading versions takes (``modelstore.view_modelversion``);
starting and stopping the one activation takes (``modelstore.activate_modelversion``). A
refused start or stop is a 400 ``invalid_arms`` (or ``experiment_error``) naming the problem,
409 ``experiment_running`` / ``experiment_not_running``, 404 for an unknown experiment.
"""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from hybridrec.api.fields import MAX_PAGE_SIZE, ErrorAnswer, checked, single_values
from hybridrec.api.parsers import JSONParser
from hybridrec.api.throttling import ScopedWindowThrottle
from modelstore.api.permissions import CanActivate, CanView

from .. import selectors, services
from ..results import experiment_results
from .serializers import (
    ExperimentDetail,
    ExperimentListQuery,
    ExperimentPage,
    StartRequest,
    StopRequest,
)

REFUSED = OpenApiResponse(ErrorAnswer, description="Refused: the body names the field or the rule.")
DENIED = OpenApiResponse(ErrorAnswer, description="Not authenticated (401) or missing the permission (403).")
UNKNOWN = OpenApiResponse(ErrorAnswer, description="No experiment with this id.")
CONFLICT = OpenApiResponse(
    ErrorAnswer, description="An experiment already runs for the kind, or this one has stopped."
)
EXPERIMENT = OpenApiParameter(
    "experiment", {"type": "string", "maxLength": 20, "pattern": "^[0-9]+$"}, OpenApiParameter.PATH
)


class ExperimentPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = MAX_PAGE_SIZE


def detail(experiment, status_code=status.HTTP_200_OK):
    experiment = selectors.experiment_get(experiment.pk)
    body = {**selectors.experiment_as_dict(experiment), "results": experiment_results(experiment)}
    location = reverse("api:experiment-detail", args=[experiment.pk])
    return Response(body, status=status_code, headers={"Location": location})


class ExperimentListView(APIView):
    """List experiments (GET) or start one (POST)."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    parser_classes = [JSONParser]

    def get_permissions(self):
        return [CanActivate()] if self.request.method == "POST" else [CanView()]

    @extend_schema(
        operation_id="v1_experiments_list",
        parameters=[ExperimentListQuery],
        responses={200: ExperimentPage, 400: REFUSED, 401: DENIED, 403: DENIED},
        summary="List experiments, latest first",
    )
    def get(self, request):
        query = checked(
            ExperimentListQuery, single_values(request.query_params, ExperimentListQuery().fields)
        )
        experiments = selectors.experiment_list(kind=query.get("kind"), status=query.get("status"))
        paginator = ExperimentPagination()
        page = paginator.paginate_queryset(experiments, request, view=self)
        return paginator.get_paginated_response([selectors.experiment_as_dict(e) for e in page])

    @extend_schema(
        request=StartRequest,
        responses={201: ExperimentDetail, 400: REFUSED, 401: DENIED, 403: DENIED, 409: CONFLICT},
        description=(
            "Start an experiment for a kind: the kind's active version must be one of the arms "
            "(it is the control); the other arms are ready candidates of the same kind. Shares are "
            "in (0, 1] and sum to 1 (within 1e-6)."
        ),
    )
    def post(self, request):
        body = checked(StartRequest, request.data)
        experiment = services.experiment_start(
            kind=body["kind"], name=body["name"], arms=body["arms"], user=request.user
        )
        return detail(experiment, status.HTTP_201_CREATED)


class ExperimentDetailView(APIView):
    """One experiment, its arms and its results so far."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    permission_classes = [CanView]

    @extend_schema(
        parameters=[EXPERIMENT],
        responses={200: ExperimentDetail, 401: DENIED, 403: DENIED, 404: UNKNOWN},
    )
    def get(self, request, experiment):
        return detail(selectors.experiment_get(experiment))


class ExperimentStopView(APIView):
    """Stop an experiment: keep the control, or promote a candidate (an audited activation)."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    permission_classes = [CanActivate]
    parser_classes = [JSONParser]

    @extend_schema(
        request=StopRequest,
        parameters=[EXPERIMENT],
        responses={
            200: ExperimentDetail,
            400: REFUSED,
            401: DENIED,
            403: DENIED,
            404: UNKNOWN,
            409: CONFLICT,
        },
    )
    def post(self, request, experiment):
        found = selectors.experiment_get(experiment)
        body = checked(StopRequest, request.data)
        services.experiment_stop(
            experiment=found,
            user=request.user,
            keep_control=bool(body.get("keep_control")),
            promote=body.get("promote"),
            reason=body.get("reason", ""),
        )
        return detail(found)
