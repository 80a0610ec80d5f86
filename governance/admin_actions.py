"""Service-backed transitions in the admin: object buttons and list actions from one list.

A ``ServiceAction`` names a service call and whether it needs a reason. The mixin turns
each into a button on the change page (shown when the object's state allows it) and an
action on the changelist; both ask for a reason when needed, call the service, and say
what happened. Nothing here changes a status by itself.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_fsm import can_proceed

from .errors import WardenError
from .ids import is_id


def per_request(request, key: str, compute):
    """Compute a permission answer once per request (the sidebar asks for every model)."""
    cache = request.__dict__.setdefault("_warden_permission_cache", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def holds_on_any(user, perm: str) -> bool:
    """``user`` holds ``perm`` on at least one object, through a group or directly."""
    app_label, codename = perm.split(".", 1)
    return (
        Permission.objects.filter(codename=codename, content_type__app_label=app_label)
        .filter(Q(groupobjectpermission__group__user=user) | Q(userobjectpermission__user=user))
        .exists()
    )


@dataclass(frozen=True)
class ServiceAction:
    name: str
    label: str
    call: Callable  # (obj, user, reason, **posted) -> object
    reason: str = "none"  # "none", "optional" or "required"
    transition: str | None = None  # model method whose availability shows the button
    available: Callable | None = None  # or a predicate on the object
    perm: str | None = None  # the permission the service will check, to hide useless buttons
    perm_on: Callable | None = None  # the object it is checked on (None: a model-level permission)
    done: str = ""  # what happened, a sentence formatted with obj: "Assessed {obj.control} as met."
    # form fields posted as lists that the call also receives, as keywords of their names: with
    # ("responses",), call(obj, user, reason, responses=request.POST.getlist("responses"))
    posted: tuple[str, ...] = ()

    def is_offered_to(self, request) -> bool:
        """Whether the list action is worth offering to the user at all: the permission the
        service checks, held globally or (for object permissions) on some object."""
        if not self.perm or request.user.has_perm(self.perm):
            return True
        if self.perm_on is None:
            return False
        perm = self.perm
        return per_request(request, f"any:{perm}", lambda: holds_on_any(request.user, perm))

    def is_available(self, obj, user) -> bool:
        if self.perm and not user.has_perm(self.perm, self.perm_on(obj) if self.perm_on else None):
            return False
        if self.available is not None:
            return self.available(obj)
        return can_proceed(getattr(obj, self.transition or self.name))


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), required=False)

    def __init__(self, *args, required: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = required


class ServiceActionsAdmin(admin.ModelAdmin):
    service_actions: list[ServiceAction] = []
    change_form_template = "admin/warden/change_form.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/act/<str:action>/",
                self.admin_site.admin_view(self.service_action_view),
                name="{}_{}_act".format(*info),
            ),
            *super().get_urls(),
        ]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        offered = per_request(
            request,
            f"offered:{self.opts.label_lower}",
            lambda: [a for a in self.service_actions if a.is_offered_to(request)],
        )
        for action in offered:
            actions[f"act_{action.name}"] = (self._bulk(action), f"act_{action.name}", f"{action.label} selected")
        return actions

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(is_id(pk) for pk in selected):
            self.message_user(request, "The selection is not valid; nothing was done.", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        buttons = []
        if obj is not None:
            buttons = [
                {
                    "label": a.label,
                    "url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_act", args=[obj.pk, a.name]),
                }
                for a in self.service_actions
                if a.is_available(obj, request.user)
            ]
        context = {**(extra_context or {}), "service_buttons": buttons, **self.change_view_context_for(request, obj)}
        return super().change_view(request, object_id, form_url, context)

    def change_view_context_for(self, request, obj) -> dict:
        """``change_view_context`` for pages whose extras depend on who is looking."""
        return self.change_view_context(obj)

    def change_view_context(self, obj) -> dict:
        """Extra context for the change page; ``below_inlines`` is HTML shown after the inlines."""
        return {}

    def service_action_view(self, request, object_id, action):
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise PermissionDenied
        chosen = get_object_or_404_action(self.service_actions, action)
        form = ReasonForm(request.POST if request.method == "POST" else None, required=chosen.reason == "required")
        if request.method == "POST" and form.is_valid():
            if self._run(request, chosen, obj, form.cleaned_data["reason"]):
                done = chosen.done.format(obj=obj) if chosen.done else f"{chosen.label}: done for {obj}."
                self.message_user(request, done, messages.SUCCESS)
            change = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
            return HttpResponseRedirect(safe_next(request, change))
        return self._confirm(request, chosen, [obj], form)

    def _bulk(self, chosen: ServiceAction):
        def run(modeladmin, request, queryset):
            form = ReasonForm(request.POST if "confirm" in request.POST else None, required=chosen.reason == "required")
            if chosen.reason != "none" and not form.is_valid():
                return self._confirm(request, chosen, list(queryset), form, bulk=True)
            reason = form.cleaned_data.get("reason", "") if form.is_bound else ""
            done = sum(self._run(request, chosen, obj, reason) for obj in queryset)
            level = messages.SUCCESS if done == len(queryset) else messages.WARNING
            self.message_user(request, f"{chosen.label}: {done} of {len(queryset)} done.", level)
            return None

        run.__name__ = f"act_{chosen.name}"
        return run

    def _run(self, request, chosen: ServiceAction, obj, reason: str) -> bool:
        posted = {name: request.POST.getlist(name) for name in chosen.posted}
        try:
            chosen.call(obj, request.user, reason, **posted)
        except WardenError as exc:
            self.message_user(request, f"{chosen.label} refused for {obj}: {exc.detail}", messages.ERROR)
            return False
        return True

    def _confirm(self, request, chosen: ServiceAction, objects, form, bulk: bool = False):
        context = {
            **self.admin_site.each_context(request),
            "title": f"{chosen.label}: confirm",
            "opts": self.opts,
            "objects": objects,
            "action": chosen,
            "form": form,
            "bulk": bulk,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            # what was posted with the action travels on with the reason asked for here
            "carried": [(name, value) for name in chosen.posted for value in request.POST.getlist(name)],
        }
        return TemplateResponse(request, "admin/warden/confirm_action.html", context)


def safe_next(request, default: str) -> str:
    """Where a form posted from another page (the dossier) goes back to: its ``next`` field
    when that is a page of this site, else ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def get_object_or_404_action(actions: list[ServiceAction], name: str) -> ServiceAction:
    for action in actions:
        if action.name == name:
            return action
    raise Http404(f"No action {name!r}.")
