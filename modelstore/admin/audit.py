"""The audit list: every activation, rollback and withdrawal by the system, read-only."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from ..models import ActivationEvent
from .panels import username_or_command_line


@admin.register(ActivationEvent)
class ActivationEventAdmin(admin.ModelAdmin):
    """The audit list: every activation, rollback and withdrawal by the system, read-only."""

    list_display = ("created_at", "kind", "action", "from_link", "to_link", "by", "reason")
    list_filter = ("kind", "action")
    search_fields = ("from_label", "to_label", "user__username")
    list_select_related = ("user",)
    ordering = ("-created_at", "-id")
    fields = ("created_at", "kind", "action", "from_link", "to_link", "by", "reason")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        # Whoever may see the versions may see how they were switched.
        return super().has_view_permission(request, obj) or request.user.has_perm(
            "modelstore.view_modelversion"
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _version_link(self, version_id, label):
        if version_id is None:
            return label or "—"
        url = reverse(
            "admin:modelstore_modelversion_change", args=[version_id], current_app=self.admin_site.name
        )
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="From", ordering="from_label")
    def from_link(self, obj):
        return self._version_link(obj.from_version_id, obj.from_label)

    @admin.display(description="To", ordering="to_label")
    def to_link(self, obj):
        return self._version_link(obj.to_version_id, obj.to_label)

    @admin.display(description="By", ordering="user__username")
    def by(self, obj):
        return username_or_command_line(obj.user)
