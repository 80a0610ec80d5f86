"""Integration tokens in the admin: platform admins create them for anyone, authors for their
own organisation's CI; the key is shown once, on the page that answers the creation, and
never again (only its hash is kept). Tokens are revoked, never edited or deleted."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from rest_framework.authtoken.models import TokenProxy

from governance.admin_actions import ServiceAction
from governance.admin_base import ScopedAdmin, ServiceCreateAdminMixin, ServiceCreateForm

from .models import IntegrationToken, TokenScope
from .selectors import organisations_of, organisations_visible_to
from .tokens import token_create, token_revoke, tokens_manageable_by

# DRF's own tokens no longer authenticate (submissions/tokens.py): their admin would only
# create keys that every endpoint refuses.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


class TokenForm(ServiceCreateForm):
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Give each tool only what it needs: a CI job submit and report, a host platform feed.",
    )

    class Meta:
        model = IntegrationToken
        fields = ["name", "owner", "organisation", "scopes", "expiry_date", "rate_per_minute"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        manager = self.user.has_perm("submissions.manage_any_integrationtoken")
        owners = get_user_model().objects.filter(is_active=True)
        self.fields["owner"].queryset = owners if manager else owners.filter(pk=self.user.pk)  # type: ignore[attr-defined]
        self.fields["owner"].initial = self.user.pk
        self.fields["owner"].help_text = "Requests with the token act as this user, within the token's scopes."
        organisations = organisations_visible_to(user=self.user) if manager else organisations_of(user=self.user)
        self.fields["organisation"].queryset = organisations  # type: ignore[attr-defined]
        self.fields["organisation"].required = not manager
        if not manager and len(own := list(organisations[:2])) == 1:
            self.fields["organisation"].initial = own[0].pk  # an author's one organisation, chosen

    def create(self, data):
        token, self.key = token_create(
            actor=self.user,
            name=data["name"],
            owner=data["owner"],
            organisation=data["organisation"],
            scopes=data["scopes"],
            expires_at=data["expiry_date"],
            rate_per_minute=data["rate_per_minute"],
        )
        return token


@admin.register(IntegrationToken)
class IntegrationTokenAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    add_form = TokenForm
    list_display = ["name", "prefix", "owner", "organisation", "scope_list", "expiry_date", "last_used_at", "state"]
    list_filter = ["revoked"]
    search_fields = ["name", "prefix", "owner__username"]
    readonly_fields = (
        "name",
        "prefix",
        "owner",
        "organisation",
        "scope_list",
        "rate_per_minute",
        "expiry_date",
        "created_by",
        "created_at",
        "last_used_at",
        "state",
        "revoked_at",
        "revoked_by",
    )
    fields = readonly_fields
    service_actions = [
        ServiceAction(
            "revoke",
            "Revoke",
            lambda obj, user, reason: token_revoke(token=obj, actor=user, reason=reason),
            reason="optional",
            available=lambda obj: not obj.revoked,
            perm="submissions.change_integrationtoken",
            done="Revoked {obj}: the next request with it is refused.",
        )
    ]

    def scoped_queryset(self, request):
        return tokens_manageable_by(user=request.user).select_related("owner", "organisation")

    def has_add_permission(self, request):
        return request.user.has_perm("submissions.add_integrationtoken")

    def response_add(self, request, obj, post_url_continue=None):
        """The key, once: this page is the only place it is ever shown."""
        form = request._token_form
        context = {**self.admin_site.each_context(request), "opts": self.opts, "token": obj, "key": form.key}
        return TemplateResponse(request, "admin/submissions/integrationtoken/created.html", context)

    def save_form(self, request, form, change):
        request._token_form = form
        return super().save_form(request, form, change)

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description="State")
    def state(self, obj):
        if obj.revoked:
            return "revoked"
        return "expired" if obj.has_expired else "active"
