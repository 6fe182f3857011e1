"""Recommendation views: parse and check the request, call the facade, return its answer."""

import os

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from hybridrec.api.errors import invalid
from hybridrec.api.fields import ErrorAnswer, check_id, checked, id_parameter_schema, single_values
from hybridrec.api.parsers import JSONParser
from hybridrec.api.throttling import ScopedWindowThrottle

from ..serving import get_cache, health
from . import answering
from .params import parse_query
from .serializers import (
    BatchAnswer,
    BatchRequest,
    HealthAnswer,
    LiveAnswer,
    ReadyAnswer,
    RecommendationAnswer,
    RecommendationQuery,
    SimilarAnswer,
    SimilarQuery,
)

ERRORS = {
    400: OpenApiResponse(ErrorAnswer, description="A parameter is invalid; the body names it."),
    401: OpenApiResponse(ErrorAnswer, description="No credentials (unless HYBRIDREC_PUBLIC_API)."),
    403: OpenApiResponse(ErrorAnswer, description="version given by someone who is not staff."),
    404: OpenApiResponse(ErrorAnswer, description="Unknown version (or, for similar items, unknown item)."),
    409: OpenApiResponse(ErrorAnswer, description="The forced version is not served now."),
    429: OpenApiResponse(ErrorAnswer, description="Throttled."),
    503: OpenApiResponse(
        ErrorAnswer, description="No model of a needed kind can be served, or the database is unavailable."
    ),
}
CUSTOMER_ID = OpenApiParameter("customer_id", id_parameter_schema(), OpenApiParameter.PATH)
ITEM_ID = OpenApiParameter("item_id", id_parameter_schema(), OpenApiParameter.PATH)


class RecommendationView(APIView):
    """Recommendations for one customer."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "recommendations"

    @extend_schema(
        parameters=[CUSTOMER_ID, RecommendationQuery],
        responses={200: RecommendationAnswer, **ERRORS},
        description=(
            "Top k items for a customer. strategy=cf (default) serves the precomputed or factor "
            "ranking, cb items like those the customer has, hybrid a blend weighted by weight. An "
            'unknown customer gets popular items with fallback "popular".'
        ),
    )
    def get(self, request, customer_id):
        check_id("customer_id", customer_id)
        query = parse_query(request.query_params, ("k", "strategy", "weight", "exclude"))
        answer = answering.recommend(
            request,
            customer_id,
            strategy=query.get("strategy", "cf"),
            forced_value=answering.query_version(request),
            k=query.get("k"),
            weight=query.get("weight"),
            exclude=query.get("exclude", ()),
        )
        return Response(answer)


class BatchView(APIView):
    """Recommendations for many customers in one request."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "batch"
    parser_classes = [JSONParser]

    @extend_schema(
        request=BatchRequest,
        responses={200: BatchAnswer, **ERRORS},
        description="One answer per customer id, in the order given; at most HYBRIDREC_MAX_BATCH ids.",
    )
    def post(self, request):
        body = checked(BatchRequest, request.data)
        results = answering.recommend_batch(
            request,
            body["customer_ids"],
            strategy=body["strategy"],
            forced_value=body.get("version"),
            k=body.get("k"),
            weight=body.get("weight"),
            exclude=body.get("exclude", ()),
        )
        return Response({"results": results})


class SimilarItemsView(APIView):
    """Items similar to an item, by content."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "recommendations"

    @extend_schema(
        parameters=[ITEM_ID, SimilarQuery],
        responses={200: SimilarAnswer, **ERRORS},
    )
    def get(self, request, item_id):
        check_id("item_id", item_id)
        query = parse_query(request.query_params, ("k", "exclude"))
        customer_id = single_values(request.query_params, ("customer_id",)).get("customer_id")
        if customer_id == "":
            raise invalid("customer_id", "This field may not be blank.")
        if customer_id is not None:
            check_id("customer_id", customer_id)
        answer = answering.similar(
            request,
            item_id,
            customer_id=customer_id,
            forced_value=answering.query_version(request),
            k=query.get("k"),
            exclude=query.get("exclude", ()),
        )
        return Response(answer)


class HealthAccess:
    """Health is public; staff (session or token) also get the detail.

    A caller whose credentials cannot be checked because the database is down is treated as
    anonymous, so health answers whatever is down.
    """

    permission_classes = [AllowAny]
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "health"

    def perform_authentication(self, request):
        try:
            request.user  # noqa: B018 - authenticates
        except DatabaseError:
            request.user, request.auth = AnonymousUser(), None

    @staticmethod
    def is_staff(request):
        return bool(request.user and request.user.is_staff)


class HealthView(HealthAccess, APIView):
    """Whether this process can serve, which versions, and why it is degraded."""

    @extend_schema(
        responses={
            200: HealthAnswer,
            503: OpenApiResponse(HealthAnswer, description="No CF model can be served."),
        },
        summary="Whether this process can serve, and which versions",
        description=(
            "status ok, degraded (serving, but not as the registry says, or the database is "
            "down; reasons says why) or unavailable (503: no CF model). Public answers name the "
            "served versions, with no paths or error texts; staff also get load seconds, the "
            "last load error, file faults and the registry check."
        ),
    )
    def get(self, request):
        report = health.summary(get_cache(), detail=self.is_staff(request))
        return Response(report, status=503 if report["status"] == "unavailable" else 200)


class HealthLiveView(HealthAccess, APIView):
    """Liveness: 200 while the process runs."""

    @extend_schema(responses={200: LiveAnswer}, description="200 while the process runs; touches nothing.")
    def get(self, request):
        return Response({"status": "alive", "pid": os.getpid()})


class HealthReadyView(HealthAccess, APIView):
    """Readiness: 200 only when a CF model is loaded and the database answers."""

    @extend_schema(
        responses={
            200: ReadyAnswer,
            503: OpenApiResponse(ReadyAnswer, description="Not ready; reasons says why."),
        },
        description="200 when a CF model is loaded and the database answers, else 503 with the reasons.",
    )
    def get(self, request):
        ready, reasons = health.readiness(get_cache())
        return Response(
            {"ready": ready, "reasons": reasons, "pid": os.getpid()}, status=200 if ready else 503
        )
