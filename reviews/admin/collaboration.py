"""Annotations, threads and feedback."""

from django import forms
from django.contrib import admin, messages

from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ScopedAdmin,
    ServiceCreateAdminMixin,
    ServiceCreateForm,
)
from governance.errors import WardenError

from .. import collaboration
from ..models import (
    Annotation,
    Feedback,
)


class AnnotationForm(ServiceCreateForm):
    class Meta:
        model = Annotation
        fields = ["version", "stage_review", "finding", "assessment", "parent", "kind", "body", "to_author"]

    def create(self, data):
        return collaboration.annotation_add(actor=self.user, **data)


@admin.register(Annotation)
class AnnotationAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    """Threads on versions, stages and findings; authors see only what is addressed to them."""

    add_form = AnnotationForm
    list_display = ["created_at", "version", "author", "kind", "short_body", "to_author", "resolved_at"]
    list_filter = ["kind", "to_author", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["version__plugin", "author"]
    readonly_fields = [
        "version",
        "stage_review",
        "finding",
        "assessment",
        "parent",
        "author",
        "kind",
        "body",
        "to_author",
        "created_at",
        "resolved_at",
        "resolved_by",
    ]
    raw_id_fields = ["version", "stage_review", "finding", "assessment", "parent"]
    service_actions = [
        ServiceAction(
            "resolve",
            "Resolve thread",
            lambda obj, user, reason: collaboration.annotation_resolve(annotation=obj, actor=user),
            available=lambda obj: obj.parent_id is None and obj.resolved_at is None,
        ),
    ]

    def scoped_queryset(self, request):
        return collaboration.annotations_visible_to_user(user=request.user)

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff

    @admin.display(description="Body")
    def short_body(self, obj):
        return obj.body[:80]


class FeedbackForm(forms.ModelForm):
    rating = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(1, 6)], coerce=int)

    class Meta:
        model = Feedback
        fields = ["rating", "comment"]

    def clean(self):
        data = super().clean()
        if self.instance.answered_at:
            raise forms.ValidationError("You already gave feedback on this version.")
        return data


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """Each user answers the feedback asked of them; platform admins read all of it."""

    list_display = ["version", "user", "role", "rating", "requested_at", "answered_at"]
    list_filter = ["role", "rating"]
    list_select_related = ["version__plugin", "user"]
    form = FeedbackForm

    def get_queryset(self, request):
        everything = super().get_queryset(request)
        if request.user.has_perm("reviews.view_feedback"):
            return everything
        return everything.filter(user=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or obj.user_id == request.user.pk or request.user.has_perm("reviews.view_feedback")
        )

    def has_change_permission(self, request, obj=None):
        return obj is not None and obj.user_id == request.user.pk and obj.answered_at is None

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            collaboration.feedback_submit(
                feedback=obj,
                actor=request.user,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data.get("comment", ""),
            )
        except WardenError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
