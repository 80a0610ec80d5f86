from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db import models
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from simple_history.admin import SimpleHistoryAdmin

from . import roles
from .admin_base import ReadOnlyAdmin, register_visibility
from .calendar import WorkingCalendar as Calendar
from .ids import is_id
from .models import (
    AllowedLicence,
    AuditEvent,
    Holiday,
    HostPlatform,
    Notification,
    NotificationPreference,
    ReviewerProfile,
    Stage,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WorkingCalendar,
)
from .notifications import EVENTS, notification_read
from .selectors import notification_preferences_of, notifications_of
from .services import host_platform_save, stage_save
from .webhook_endpoints import webhook_endpoint_delete, webhook_endpoint_save

register_visibility(Notification, notifications_of)
register_visibility(NotificationPreference, notification_preferences_of)


@admin.register(Stage)
class StageAdmin(SimpleHistoryAdmin):
    list_display = [
        "order",
        "key",
        "name",
        "kind",
        "owner_group",
        "escalation_group",
        "sla_hours",
        "blocking",
        "active",
    ]
    list_display_links = ["key", "name"]
    list_filter = ["kind", "blocking", "active"]
    list_select_related = ["owner_group", "escalation_group"]
    ordering = ["order", "key"]

    def has_delete_permission(self, request, obj=None):
        return False  # stages with reviews are history; deactivate instead

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in ("owner_group", "escalation_group"):
            kwargs["queryset"] = Group.objects.filter(name__in=roles.STAGE_ROLES).order_by("name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        stage_save(stage=obj, actor=request.user, changed=form.changed_data)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "seq",
        "created_at",
        "actor_username",
        "action",
        "object_repr",
        "from_state",
        "to_state",
        "request_id",
    ]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_username", "request_id", "reason"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


@admin.register(HostPlatform)
class HostPlatformAdmin(SimpleHistoryAdmin):
    """Platform admins register host platforms and choose the default, on the change form or
    in the list; every save goes through ``host_platform_save``. Never deleted: budgets belong
    to a platform, and eligibility results were judged against it."""

    list_display = ["name", "api_version", "is_default", "resource_limits"]
    list_editable = ["is_default"]

    class Form(forms.ModelForm):
        """Ticking "is default" moves the default (the service unsets the previous one in the
        same transaction), so another platform being the default now is not a form error."""

        class Meta:
            model = HostPlatform
            fields = ["name", "api_version", "resource_limits", "is_default"]

        def _get_validation_exclusions(self):  # ModelForm's list of what model validation skips
            return {*super()._get_validation_exclusions(), "is_default"}  # type: ignore[misc]

    class ChangelistFormSet(forms.BaseModelFormSet):
        def clean(self):
            super().clean()
            chosen = [form for form in self.forms if form.cleaned_data.get("is_default")]
            if len(chosen) > 1:
                raise forms.ValidationError("Only one host platform can be the default.")

    form = Form

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=self.Form, **kwargs)

    def get_changelist_formset(self, request, **kwargs):
        return super().get_changelist_formset(request, formset=self.ChangelistFormSet, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        host_platform_save(host=obj, actor=request.user, changed=form.changed_data)


@admin.register(AllowedLicence)
class AllowedLicenceAdmin(SimpleHistoryAdmin):
    list_display = ["spdx_id", "name"]
    search_fields = ["spdx_id", "name"]


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(WorkingCalendar)
class WorkingCalendarAdmin(SimpleHistoryAdmin):
    list_display = ["name", "time_zone", "working_days", "day_start", "day_end", "is_default"]
    inlines = [HolidayInline]

    def save_model(self, request, obj, form, change):
        # the calendar module validates zones and hours; refuse here rather than at the next sweep
        Calendar(
            time_zone=obj.time_zone,
            working_days=frozenset(obj.working_days),
            day_start=obj.day_start,
            day_end=obj.day_end,
            holidays=frozenset(),
        )
        super().save_model(request, obj, form, change)


@admin.register(ReviewerProfile)
class ReviewerProfileAdmin(SimpleHistoryAdmin):
    list_display = ["user", "lead"]
    list_select_related = ["user", "lead"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Each user's in-admin notifications; nobody reads anyone else's."""

    list_display = ["created_at", "subject", "event", "read", "emailed"]
    list_filter = ["event", ("read_at", admin.EmptyFieldListFilter)]
    fields = readonly_fields = (
        "created_at",
        "event",
        "subject",
        "body",
        "link",
        "read_at",
        "sent_at",
        "attempts",
        "last_error",
    )
    actions = ["mark_read"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(recipient=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (obj is None or obj.recipient_id == request.user.pk)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(boolean=True)
    def read(self, obj):
        return obj.read_at is not None

    @admin.display(boolean=True)
    def emailed(self, obj):
        return obj.sent_at is not None and obj.email

    @admin.display(description="Link")
    def link(self, obj):
        return format_html('<a href="{}">{}</a>', obj.url, obj.url) if obj.url else "—"

    @admin.action(description="Mark as read")
    def mark_read(self, request, queryset):
        count = queryset.filter(read_at__isnull=True).update(read_at=timezone.now())
        self.message_user(request, f"{count} marked as read.")

    def get_actions(self, request):
        return {"mark_read": (type(self).mark_read, "mark_read", "Mark as read")}

    def get_urls(self):
        opened = path("<int:pk>/open/", self.admin_site.admin_view(self.open_view), name="governance_notification_open")
        return [opened, *super().get_urls()]

    def open_view(self, request, pk: int):
        """Reading a notification marks it read and goes where it points (the list and header link here)."""
        notification = self.get_queryset(request).filter(pk=pk).first()
        if notification is None or not self.has_view_permission(request, notification):
            raise Http404("No such notification.")
        notification_read(notification=notification, user=request.user)
        here = reverse("admin:governance_notification_change", args=[notification.pk])
        safe = url_has_allowed_host_and_scheme(notification.url, allowed_hosts={request.get_host()})
        return HttpResponseRedirect(notification.url if notification.url and safe else here)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        notification = self.get_queryset(request).filter(pk=object_id).first() if is_id(object_id) else None
        if notification is not None:  # viewing it is reading it
            notification_read(notification=notification, user=request.user)
        return super().change_view(request, object_id, form_url, extra_context)


class PreferenceForm(forms.ModelForm):
    event = forms.ChoiceField(choices=sorted(EVENTS.items()))
    user = None  # the signed-in user, set by NotificationPreferenceAdmin.get_form

    class Meta:
        model = NotificationPreference
        fields = ["event", "in_admin", "email"]

    def clean_event(self):
        event = self.cleaned_data["event"]
        mine = NotificationPreference.objects.filter(user=self.user, event=event).exclude(pk=self.instance.pk)
        if mine.exists():
            raise forms.ValidationError("You already have a preference for this event.")
        return event


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    """Which events a user gets, and how. Users manage their own."""

    list_display = ["event", "in_admin", "email"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        return type("UserPreferenceForm", (PreferenceForm,), {"user": request.user})

    def get_queryset(self, request):
        return super().get_queryset(request).filter(user=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (obj is None or obj.user_id == request.user.pk)

    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        obj.user = request.user
        super().save_model(request, obj, form, change)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SimpleHistoryAdmin):
    list_display = ["name", "url", "active", "consecutive_failures", "disabled_reason"]
    fields = ["name", "url", "secret", "events", "active", "consecutive_failures", "disabled_reason"]
    readonly_fields = ["consecutive_failures", "disabled_reason"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "secret":  # never shown back in the page
            kwargs["widget"] = forms.PasswordInput(render_value=False)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            form.base_fields["secret"].required = False
            form.base_fields["secret"].help_text = "Leave empty to keep the current secret."
        return form

    def save_model(self, request, obj, form, change):
        webhook_endpoint_save(endpoint=obj, actor=request.user, secret=form.cleaned_data.get("secret") or "")

    def delete_model(self, request, obj):
        webhook_endpoint_delete(endpoint=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint, actor=request.user)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "status_code", "error", "duration_ms")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "endpoint", "event", "attempts", "delivered_at", "abandoned", "next_attempt_at"]
    list_filter = ["endpoint", "event", "abandoned", ("delivered_at", admin.EmptyFieldListFilter)]
    list_select_related = ["endpoint"]
    readonly_fields = [
        "endpoint",
        "event",
        "payload",
        "created_at",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "abandoned",
    ]
    inlines = [WebhookAttemptInline]
    show_full_result_count = False


class WardenUserAdmin(UserAdmin):
    """Every page links users by name (assignee, decided by, uploaded by): anyone may open their
    own user, read-only (the header links the password change); others need ``auth.view_user``."""

    def has_view_permission(self, request, obj=None):
        own = obj is not None and obj.pk == request.user.pk and request.user.is_active and request.user.is_staff
        return own or super().has_view_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not super().has_view_permission(request, obj):
            return [(None, {"fields": ["username", "first_name", "last_name", "email", "groups", "last_login"]})]
        return super().get_fieldsets(request, obj)


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), WardenUserAdmin)
