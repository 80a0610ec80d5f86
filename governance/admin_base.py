"""Admin base for domain objects: scoped by selectors, read-only, writes only via services."""

from collections.abc import Callable

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import FileResponse, Http404
from simple_history.admin import SimpleHistoryAdmin

from .admin_actions import ServiceActionsAdmin, per_request  # noqa: F401 - per_request is used by the apps from here
from .errors import WardenError
from .ids import is_id

# -- what each user may see, for every choice the admin offers ------------------------------
#
# Each app registers, for its row-scoped models, the selector its lists and API use
# (``register_visibility(PluginVersion, versions_visible_to)``). The admin site wraps every
# ModelAdmin and inline it registers (``with_visibility``), so every ForeignKey and
# ManyToMany drop-down, related list filter, inline and autocomplete answer offers only what
# that selector lets the request user see: no admin has to remember it.

VISIBLE_TO: dict[type[Model], Callable[..., QuerySet]] = {}


def register_visibility(model: type[Model], selector: Callable[..., QuerySet]) -> None:
    """``selector(user=...)`` answers which objects of ``model`` the user may see."""
    VISIBLE_TO[model._meta.concrete_model or model] = selector


def visible_only(queryset: QuerySet, user) -> QuerySet:
    """``queryset`` without what ``user`` may not see (unchanged for models without a selector)."""
    selector = VISIBLE_TO.get(queryset.model._meta.concrete_model or queryset.model)
    if selector is None:
        return queryset
    return queryset.filter(pk__in=selector(user=user).values("pk"))


def narrow_choices(form: forms.BaseForm, user) -> None:
    """Every model choice of ``form`` (drop-downs, multiple choices, raw ids) to what ``user`` sees."""
    for field in form.fields.values():
        if isinstance(field, forms.ModelChoiceField) and field.queryset is not None:
            field.queryset = visible_only(field.queryset, user)


class VisibleChoicesMixin:
    """For ModelAdmins and inlines: ForeignKey and ManyToMany fields offer only visible objects.
    Runs before the admin wraps the widget, so the drop-down and validation agree."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and getattr(field, "queryset", None) is not None:
            field.queryset = visible_only(field.queryset, request.user)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and getattr(field, "queryset", None) is not None:
            field.queryset = visible_only(field.queryset, request.user)
        return field


class VisibleRelatedChoices:
    """For related list filters: the choices the user may see, whatever the filter class
    (Django's two in the same single query, any other by filtering what it chose)."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        if (related._meta.concrete_model or related) not in VISIBLE_TO:
            return super().field_choices(field, request, model_admin)  # type: ignore[misc]
        limit = Q(pk__in=visible_only(related._default_manager.all(), request.user).values("pk"))
        wrapped = type(self).__mro__[2]  # (the wrapper, this mixin, the filter class it wraps, ...)
        if wrapped not in (admin.RelatedFieldListFilter, admin.RelatedOnlyFieldListFilter):
            choices = super().field_choices(field, request, model_admin)  # type: ignore[misc]
            allowed = set(related._default_manager.filter(limit).values_list("pk", flat=True))
            return [(value, label) for value, label in choices if value in allowed]
        if wrapped is admin.RelatedOnlyFieldListFilter:
            used = model_admin.get_queryset(request).distinct().values_list(f"{self.field_path}__pk", flat=True)  # type: ignore[attr-defined]
            limit &= Q(pk__in=used)
        ordering = self.field_admin_ordering(field, request, model_admin)  # type: ignore[attr-defined]
        return field.get_choices(include_blank=False, limit_choices_to=limit, ordering=ordering)


_WRAPPED: dict[type, type] = {}


def _wrapped(cls: type, mixin: type) -> type:
    if issubclass(cls, mixin):
        return cls
    if cls not in _WRAPPED:
        _WRAPPED[cls] = type(cls.__name__, (mixin, cls), {"__module__": cls.__module__, "__doc__": cls.__doc__})
    return _WRAPPED[cls]


def visible_list_filter(model: type[Model], spec):
    """A list_filter entry whose related choices are narrowed; other entries as they are."""
    if isinstance(spec, (list, tuple)) and len(spec) == 2 and isinstance(spec[1], type):
        if issubclass(spec[1], admin.RelatedFieldListFilter):
            return (spec[0], _wrapped(spec[1], VisibleRelatedChoices))
        return spec
    if isinstance(spec, str):
        try:
            field = get_fields_from_path(model, spec)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return spec
        if getattr(field, "remote_field", None) is not None:
            return (spec, _wrapped(admin.RelatedFieldListFilter, VisibleRelatedChoices))
    return spec


class VisibleInlineMixin(VisibleChoicesMixin):
    """An inline lists only the related rows the user may see."""

    def get_queryset(self, request):
        return visible_only(super().get_queryset(request), request.user)  # type: ignore[misc]


class VisibleAdminMixin(VisibleChoicesMixin):
    """Drop-downs, related list filters and inlines of a ModelAdmin, narrowed to the user; an
    object outside the admin's queryset is a 404 on every page of it, exactly as a missing one
    (Django's admin would redirect to the index with "doesn't exist", or refuse a delete 403)."""

    def get_object(self, request, object_id, from_field=None):
        found = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if found is None:
            raise Http404("No such object.")
        return found

    def get_list_filter(self, request):
        specs = super().get_list_filter(request)  # type: ignore[misc]
        return [visible_list_filter(self.model, spec) for spec in specs]  # type: ignore[attr-defined]

    def get_inlines(self, request, obj):
        return [_wrapped(inline, VisibleInlineMixin) for inline in super().get_inlines(request, obj)]  # type: ignore[misc]


def with_visibility(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """``admin_class`` with ``VisibleAdminMixin`` in front (the admin site applies it to all)."""
    return _wrapped(admin_class, VisibleAdminMixin)


class VisibleAutocompleteJsonView(AutocompleteJsonView):
    """Autocomplete answers only what the user may see, whichever field asks."""

    def get_queryset(self):
        return visible_only(super().get_queryset(), self.request.user)


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
        object_id = self._visible_pk(request, object_id)
        if not hasattr(self.model._meta, "simple_history_manager_attribute"):  # append-only rows keep no history
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """Show an old version; never save it back (a revert would bypass the services)."""
        if request.method != "GET":
            raise PermissionDenied
        object_id = self._visible_pk(request, object_id)
        return super().history_form_view(request, object_id, valid_pk(version_id), extra_context)

    def _visible_pk(self, request, object_id: str) -> str:
        """An object outside the user's selector is a 404, exactly as a missing one: the
        history pages must not tell another vendor which ids exist (simple-history answers
        403 for an object it finds but may not show)."""
        if not self.scoped_queryset(request).filter(pk=valid_pk(object_id)).exists():
            raise Http404("No such object.")
        return object_id


def attachment(file, filename: str) -> FileResponse:
    """A stored upload or report, only ever downloaded: the browser neither sniffs nor renders it."""
    response = FileResponse(
        file.open("rb"), as_attachment=True, filename=filename, content_type="application/octet-stream"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


def valid_pk(value: str) -> str:
    """Object ids in admin URLs are integers; anything else is a 404, not a 500."""
    if not is_id(value):
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
                    narrow_choices(self, request.user)

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
