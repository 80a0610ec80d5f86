"""Threads over REST, for the integrations that mirror discussions (a ticketing tool, a chat
bridge): ``GET /api/v1/threads/`` (``?version=3&finding=12&resolved=false``), ``GET
/api/v1/threads/{id}/`` with its replies, and ``POST /api/v1/threads/{id}/replies/``, which is
the admin's reply (``annotation_add``): the same people may reply (reviewers, and authors in
threads addressed to them), to an unresolved thread, each reply an audit event. A thread the
caller may not read is a 404, as one that does not exist."""

import django_filters
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from governance.filters import IdFilter
from governance.viewsets import VisibleViewSet

from .collaboration import annotation_add, annotations_visible_to_user
from .models import Annotation, AnnotationKind


class ThreadFilter(django_filters.FilterSet):
    """``?version=3&finding=12&resolved=false``."""

    version = IdFilter(field_name="version_id")
    finding = IdFilter(field_name="finding_id")
    resolved = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Annotation
        fields: list[str] = []


class ReplyOut(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "author", "kind", "body", "created_at"]


class ThreadOut(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    replies = ReplyOut(many=True, read_only=True)

    class Meta:
        model = Annotation
        fields = [
            "id",
            "version",
            "stage_review",
            "finding",
            "assessment",
            "author",
            "kind",
            "body",
            "to_author",
            "created_at",
            "resolved_at",
            "resolved_by",
            "replies",
        ]


class ReplyIn(serializers.Serializer):
    body = serializers.CharField(max_length=20_000)
    kind = serializers.ChoiceField(choices=AnnotationKind.choices, default=AnnotationKind.COMMENT)


class ThreadViewSet(VisibleViewSet):
    """The threads the caller may read (reviewers: every thread of a version they may see;
    authors: those addressed to them), newest first, each with its replies."""

    model = Annotation
    serializer_class = ThreadOut
    filterset_class = ThreadFilter
    token_scopes = {"GET": ("read", "triage", "submit"), "POST": ("triage", "submit")}

    def visible(self, user) -> QuerySet[Annotation]:
        replies = Annotation.objects.select_related("author").order_by("created_at", "pk")
        return (
            annotations_visible_to_user(user=user)
            .filter(parent=None)
            .select_related("author", "resolved_by")
            .prefetch_related(Prefetch("replies", queryset=replies))
        )

    @extend_schema(request=ReplyIn, responses={201: ThreadOut})
    @action(detail=True, methods=["post"])
    def replies(self, request: Request, pk: str | None = None) -> Response:
        """Reply to the thread, as in the admin: 201 with the thread and its replies; 404 for a
        thread the caller may not read (an author never sees a thread among reviewers), 409
        when it is resolved, 400 for an empty body."""
        thread = get_object_or_404(self.get_queryset(), pk=pk)
        given = ReplyIn(data=request.data)
        given.is_valid(raise_exception=True)
        annotation_add(version=thread.version, actor=request.user, parent=thread, **given.validated_data)
        return Response(ThreadOut(self.get_queryset().get(pk=thread.pk)).data, status=status.HTTP_201_CREATED)
