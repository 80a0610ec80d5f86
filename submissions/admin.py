from django.contrib import admin
from django.db.models import Count

from governance.admin_base import (
    ScopedAdmin,
    ServiceCreateAdminMixin,
    ServiceCreateForm,
    per_request,
    register_visibility,
)

from . import services
from .models import Organisation, Plugin, PluginVersion
from .selectors import (
    organisations_of,
    organisations_visible_to,
    plugins_visible_to,
    versions_visible_to,
)

register_visibility(Organisation, organisations_visible_to)
register_visibility(Plugin, plugins_visible_to)
register_visibility(PluginVersion, versions_visible_to)


class OrganisationForm(ServiceCreateForm):
    class Meta:
        model = Organisation
        fields = ["name", "slug", "contact_email"]

    def create(self, data):
        return services.organisation_create(actor=self.user, **data)


@admin.register(Organisation)
class OrganisationAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    add_form = OrganisationForm
    list_display = ["name", "slug", "contact_email", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["name", "slug", "contact_email", "members", "created_at"]

    def scoped_queryset(self, request):
        return organisations_visible_to(user=request.user)

    def has_add_permission(self, request):
        return request.user.has_perm("submissions.add_organisation")

    @admin.display(description="Members")
    def members(self, obj):
        return ", ".join(sorted(obj.group.user_set.values_list("username", flat=True))) or "—"


class PluginForm(ServiceCreateForm):
    class Meta:
        model = Plugin
        fields = ["organisation", "name", "category", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations_of(user=self.user)  # type: ignore[attr-defined]

    def create(self, data):
        return services.plugin_create(actor=self.user, **data)


@admin.register(Plugin)
class PluginAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    add_form = PluginForm
    list_display = ["name", "organisation", "category", "version_count", "created_at"]
    list_filter = ["category", ("organisation", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["organisation"]
    search_fields = ["name", "organisation__name"]
    readonly_fields = ["organisation", "name", "category", "description", "created_at"]

    def scoped_queryset(self, request):
        return plugins_visible_to(user=request.user).annotate(version_total=Count("versions"))

    def has_add_permission(self, request):
        return per_request(request, "is_member", lambda: organisations_of(user=request.user).exists())

    @admin.display(description="Versions", ordering="version_total")
    def version_count(self, obj):
        return obj.version_total


from . import token_admin  # noqa: E402,F401  (integration tokens)
