"""Canned responses: platform admins keep them here, reviewers read them; every save goes
through ``canned_response_save`` (audited). Never deleted: decisions used them; deactivate."""

from django import forms
from django.contrib import admin
from django.db.models import Count
from simple_history.admin import SimpleHistoryAdmin

from governance.checks import REGISTRY

from ..models import RESPONSE_STAGE_KINDS, CannedResponse
from ..models.responses import known_policy_keys
from ..responses import canned_response_save

BLANK = [("", "---------")]


class CannedResponseForm(forms.ModelForm):
    stage_kinds = forms.MultipleChoiceField(
        choices=[(kind.value, kind.label) for kind in RESPONSE_STAGE_KINDS],
        widget=forms.CheckboxSelectMultiple,
        help_text="The kinds of stage whose reviewers may use it.",
    )

    class Meta:
        model = CannedResponse
        fields = ["key", "title", "text", "check_key", "policy_key", "stage_kinds", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # choices read when the form is built: checks register at start-up, policies sync any time
        checks = [(key, f"{key}: {spec.title}") for key, spec in sorted(REGISTRY.items())]
        self.fields["check_key"] = forms.ChoiceField(
            choices=BLANK + checks, required=False, help_text=CannedResponse._meta.get_field("check_key").help_text
        )
        policies = known_policy_keys()
        if policies is not None:
            self.fields["policy_key"] = forms.ChoiceField(
                choices=BLANK + [(key, key) for key in sorted(policies | {self.instance.policy_key} - {""})],
                required=False,
                help_text="The policy this response is about (the current policies, from sync_policies).",
            )


@admin.register(CannedResponse)
class CannedResponseAdmin(SimpleHistoryAdmin):
    form = CannedResponseForm
    list_display = ["title", "key", "check_key", "policy_key", "kinds", "is_active", "used"]
    list_filter = ["is_active", "check_key", "policy_key"]
    search_fields = ["key", "title", "text"]
    ordering = ["title", "pk"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(used_count=Count("uses"))

    def has_delete_permission(self, request, obj=None):
        return False  # decisions keep a copy, and point at the response: deactivate instead

    def save_model(self, request, obj, form, change):
        canned_response_save(response=obj, actor=request.user, changed=form.changed_data)

    @admin.display(description="Stages")
    def kinds(self, obj):
        return ", ".join(obj.stage_kinds)

    @admin.display(description="Used in decisions", ordering="used_count")
    def used(self, obj):
        return obj.used_count
