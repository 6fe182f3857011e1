"""Top-level URLs: the landing page, admin, the REST API and its OpenAPI documents."""

from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from hybridrec.metrics import metrics_view
from hybridrec.views import DocsView, HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("hybridrec.api.urls", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("metrics", metrics_view, name="metrics"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="swagger-ui"),
    # Swagger UI's own files come with the app (drf-spectacular-sidecar), so /api/docs/ works
    # without a CDN. Once collected, WhiteNoise serves them before this route is reached.
    re_path(
        r"^static/(?P<path>drf_spectacular_sidecar/.+)$",
        serve_static,
        {"insecure": True},
        name="sidecar-static",
    ),
]

handler400 = "hybridrec.api.errors.bad_request_view"
handler403 = "hybridrec.api.errors.permission_denied_view"
handler404 = "hybridrec.api.errors.not_found_view"
handler500 = "hybridrec.api.errors.server_error_view"
