"""The project's admin site: the registered models plus the training pages, which have no model."""

from django.contrib import admin


class HybridrecAdminSite(admin.AdminSite):
    """Serve every registered ``ModelAdmin``, and the training pages of ``recommendations.training``."""

    def get_urls(self):
        """Return the training pages' URLs, then the site's own."""
        from recommendations.training.admin import page_urls

        return [*page_urls(self), *super().get_urls()]

    def get_app_list(self, request, app_label=None):
        """Return the site's app list, with the training entry for those allowed to train."""
        from recommendations.training.admin import app_list_entry

        apps = super().get_app_list(request, app_label)
        entry = app_list_entry(request, self) if app_label is None else None
        if entry is not None:
            apps = sorted([*apps, entry], key=lambda app: app["name"].lower())
        return apps
