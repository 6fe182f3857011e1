"""Recommendation views: parse and check the request, call the facade, return its answer."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ..services import HybridRecommendationService
from .params import parse_query
from .parsers import JSONParser
from .serializers import (
    BatchAnswer,
    BatchRequest,
    ErrorAnswer,
    HealthAnswer,
    RecommendationAnswer,
    RecommendationQuery,
    SimilarAnswer,
    SimilarQuery,
    check_id,
    id_parameter_schema,
)
from .throttling import ScopedWindowThrottle

ERRORS = {
    400: OpenApiResponse(ErrorAnswer, description="A parameter is invalid; the body names it."),
    503: OpenApiResponse(ErrorAnswer, description="No model of a needed kind can be served."),
}
CUSTOMER_ID = OpenApiParameter("customer_id", id_parameter_schema(), OpenApiParameter.PATH)
ITEM_ID = OpenApiParameter("item_id", id_parameter_schema(), OpenApiParameter.PATH)


def checked(serializer_class, data):
    """Return the validated data or raise the 400 that names the bad fields."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def service():
    return HybridRecommendationService()


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
        answer = service().recommend(
            customer_id,
            k=query.get("k"),
            strategy=query.get("strategy", "cf"),
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
        results = service().recommend_batch(
            body["customer_ids"],
            k=body.get("k"),
            strategy=body["strategy"],
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
        responses={
            200: SimilarAnswer,
            404: OpenApiResponse(ErrorAnswer, description="Unknown item."),
            **ERRORS,
        },
    )
    def get(self, request, item_id):
        check_id("item_id", item_id)
        query = parse_query(request.query_params, ("k", "exclude"))
        answer = service().similar(item_id, k=query.get("k"), exclude=query.get("exclude", ()))
        return Response(answer)


class HealthView(APIView):
    """What this process serves. Public, so load balancers and probes need no credentials."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "health"

    @extend_schema(
        responses={200: HealthAnswer, 503: OpenApiResponse(HealthAnswer, description="No CF model.")},
        description=(
            "Loaded versions, where they came from (bundle or files), load seconds, whether CB is "
            "loaded, and the last load error. 503 when no CF model can be served."
        ),
    )
    def get(self, request):
        report = service().health()
        return Response(report, status=200 if report["status"] == "ok" else 503)
