"""Admin for environments (platform admins edit them through ``environment_save``), the
deployments list (read-only: deploy, roll back and revoke are buttons on the version page),
and the form those buttons ask with."""

from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_actions import ServiceAction, get_object_or_404_action, safe_next
from governance.admin_base import ScopedAdmin, register_visibility
from governance.errors import ValidationFailed, WardenError
from submissions.models import PluginVersion

from . import deployment
from .models import Deployment, DeploymentStatus, Environment
from .selectors import deployments_visible_to

register_visibility(Deployment, deployments_visible_to)


@admin.register(Environment)
class EnvironmentAdmin(SimpleHistoryAdmin):
    """Never deleted: deployments name their environment."""

    list_display = ["name", "key", "host_platform", "order", "requires_previous", "active"]
    list_filter = ["active", "host_platform"]
    list_select_related = ["host_platform"]
    fields = ["key", "name", "host_platform", "order", "requires_previous", "active"]

    def has_delete_permission(self, request: HttpRequest, obj: Environment | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Environment, form: forms.ModelForm, change: bool) -> None:
        deployment.environment_save(
            environment=obj,
            actor=cast(User, request.user),  # the admin serves signed-in staff only
            changed=form.changed_data,
        )

    def log_addition(self, request: HttpRequest, obj: Environment, message: Any) -> None:
        pass  # the service wrote the audit event (and history)

    def log_change(self, request: HttpRequest, obj: Environment, message: Any) -> None:
        pass


@admin.register(Deployment)
class DeploymentAdmin(ScopedAdmin):
    list_display = ["version", "environment", "status", "deployed_by", "deployed_at", "ended_at", "incident"]
    list_filter = ["environment", "status"]
    list_select_related = ["version__plugin", "environment", "deployed_by"]
    search_fields = ["version__plugin__name", "version__version", "incident"]
    fields = readonly_fields = (
        "version",
        "environment",
        "status",
        "deployed_by",
        "deployed_at",
        "reason",
        "attestation_digest",
        "ended_by",
        "ended_at",
        "end_reason",
        "incident",
    )

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Deployment]:
        return deployments_visible_to(user=cast(User, request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Attestation (SHA-256 of the envelope)")
    def attestation_digest(self, obj: Deployment) -> str:
        return obj.attestation.sha256 if obj.attestation else "none (deployed before attestations existed)"


# -- the version page's Deploy and Roll back buttons ----------------------------------------


class DeploymentForm(forms.Form):
    """Deploy asks where (and, optionally, why); Roll back asks where, why and the incident."""

    environment = forms.ModelChoiceField(queryset=Environment.objects.none())
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), required=False)
    incident = forms.CharField(max_length=200, required=False, help_text="The incident reference, e.g. INC-2041.")

    def __init__(self, *args: Any, version: PluginVersion, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        environments = Environment.objects.select_related("host_platform")
        running = Deployment.objects.filter(version=version, status=DeploymentStatus.ACTIVE).values("environment")
        if action == "roll_back":
            self.fields["environment"].queryset = environments.filter(pk__in=running)  # type: ignore[attr-defined]
            self.fields["reason"].required = True
        else:
            self.fields["environment"].queryset = environments.filter(active=True).exclude(pk__in=running)  # type: ignore[attr-defined]
            del self.fields["incident"]


def asks_for_environment(obj: PluginVersion, user: User, reason: str) -> PluginVersion:
    """Deploy and Roll back are never list actions: each asks for the environment on its form."""
    raise ValidationFailed("Choose the environment on the version's Deploy or Roll back page.")


@dataclass(frozen=True)
class AnyPermAction(ServiceAction):
    """A button for holders of any of ``perms`` (roll back: a platform admin or the board)."""

    perms: tuple[str, ...] = ()

    def is_offered_to(self, request: HttpRequest) -> bool:
        return any(request.user.has_perm(perm) for perm in self.perms)

    def is_available(self, obj: Any, user: Any) -> bool:
        return any(user.has_perm(perm) for perm in self.perms) and super().is_available(obj, user)


def deployment_action_view(
    modeladmin: admin.ModelAdmin, request: HttpRequest, version: PluginVersion, action: str
) -> HttpResponse:
    """The form behind the version page's Deploy and Roll back buttons: the service says what
    was refused, and then nothing changed."""
    chosen = get_object_or_404_action(modeladmin.service_actions, action)  # type: ignore[attr-defined]
    form = DeploymentForm(request.POST if request.method == "POST" else None, version=version, action=action)
    if request.method == "POST" and form.is_valid():
        data, user = form.cleaned_data, cast(User, request.user)
        try:
            if action == "roll_back":
                deployment.version_roll_back(
                    version=version,
                    environment=data["environment"],
                    actor=user,
                    reason=data["reason"],
                    incident=data["incident"],
                )
            else:
                deployment.version_deploy(
                    version=version, environment=data["environment"], actor=user, reason=data["reason"]
                )
        except WardenError as exc:
            modeladmin.message_user(request, f"{chosen.label} refused for {version}: {exc.detail}", messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"{chosen.label}: done for {version} in {data['environment']}.", messages.SUCCESS
            )
        change = reverse("admin:submissions_pluginversion_change", args=[version.pk])
        return HttpResponseRedirect(safe_next(request, change))
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{chosen.label} {version}",
        "opts": modeladmin.opts,
        "original": version,
        "action": chosen,
        "form": form,
    }
    return TemplateResponse(request, "admin/decisions/deployment_form.html", context)


def require_visible(modeladmin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> PluginVersion:
    version = modeladmin.get_object(request, object_id)
    if version is None or not modeladmin.has_view_permission(request, version):
        raise PermissionDenied
    return version
