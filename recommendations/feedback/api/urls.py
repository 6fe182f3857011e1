"""URLs of the events API, included under /api/v1/ in the ``api`` namespace (``hybridrec.api.urls``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("events/", views.EventsView.as_view(), name="events"),
]
