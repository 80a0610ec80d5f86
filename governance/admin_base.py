"""Admin base for domain objects: scoped by selectors, read-only, writes only via services."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin

from .admin_actions import ServiceActionsAdmin
from .errors import WardenError


def per_request(request, key: str, compute):
    """Compute a permission answer once per request (the sidebar asks for every model)."""
    cache = request.__dict__.setdefault("_warden_permission_cache", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


class ScopedAdmin(ServiceActionsAdmin, SimpleHistoryAdmin):
    """Lists only what the selector lets the user see; an object outside it is a 404.

    Nothing is editable: fields are shown read-only and every change is a service action
    (or, for new objects, a ``ServiceCreateForm``).
    """

    def scoped_queryset(self, request):
        raise NotImplementedError

    def get_queryset(self, request):
        return self.scoped_queryset(request)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        if not (request.user.is_active and request.user.is_staff):
            return False
        return obj is None or self.scoped_queryset(request).filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def history_view(self, request, object_id, extra_context=None):
        return super().history_view(request, valid_pk(object_id), extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """Show an old version; never save it back (a revert would bypass the services)."""
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, valid_pk(object_id), valid_pk(version_id), extra_context)


def valid_pk(value: str) -> str:
    """Object ids in admin URLs are integers; anything else is a 404, not a 500."""
    if not str(value).isdigit():
        raise Http404("No such object.")
    return value


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records nobody edits in the admin (the audit log, imported advisories)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on a parent page that its selector already scoped: visible to whoever may
    see the parent, never editable, never added or deleted here."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceCreateForm(forms.ModelForm):
    """An add form whose ``create()`` calls a service; service refusals become form errors."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.created = None

    def create(self, data: dict):
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                self.created = self.create(self.cleaned_data)
            except WardenError as exc:
                for error in exc.errors or [{"message": exc.detail}]:
                    self.add_error(None, f"{error.get('field', '')}: {error['message']}".lstrip(": "))
                if exc.errors:
                    self.add_error(None, exc.detail)
        return data

    def _post_clean(self):
        pass  # the service validated and saved; the ModelForm must not validate a second copy


class ServiceCreateAdminMixin(admin.ModelAdmin):
    add_form: type[ServiceCreateForm]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            form = self.add_form

            class BoundForm(form):  # type: ignore[valid-type,misc]
                def __init__(self, *args, **kw):
                    super().__init__(*args, user=request.user, **kw)

            return BoundForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": list(self.add_form.base_fields)})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else super().get_readonly_fields(request, obj)

    def get_inlines(self, request, obj):
        return [] if obj is None else super().get_inlines(request, obj)

    def save_form(self, request, form, change):
        return form.created

    def save_model(self, request, obj, form, change):
        pass

    def save_related(self, request, form, formsets, change):
        pass
