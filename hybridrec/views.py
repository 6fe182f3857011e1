"""The project's own pages: the landing page at ``/`` and the API docs with a way in."""

from django.shortcuts import render
from django.urls import reverse
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import exceptions


class HomeView(TemplateView):
    """Say what this service is and link to its admin, API docs and health (no data shown)."""

    template_name = "hybridrec/home.html"


class DocsView(SpectacularSwaggerView):
    """Swagger UI; a visitor who is not logged in gets a page with the login link, still a 401."""

    def handle_exception(self, exc):
        """Answer a missing or refused login with the login page's link instead of bare text."""
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            login_url = f"{reverse('admin:login')}?next={self.request.path}"
            return render(self.request, "hybridrec/docs_login.html", {"login_url": login_url}, status=401)
        return super().handle_exception(exc)
