"""Top-level URLs: admin, the REST API and its OpenAPI documents."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
