"""The REST API at /api/v1/ (namespace ``api``): the recommendation, registry and experiments APIs."""

from django.urls import include, path

app_name = "api"

urlpatterns = [
    path("", include("recommendations.api.urls")),
    path("", include("modelstore.api.urls")),
    path("", include("recommendations.experiments.api.urls")),
    path("", include("recommendations.feedback.api.urls")),
]
