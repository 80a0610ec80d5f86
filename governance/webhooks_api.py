"""Webhook endpoints over REST, for platform admins (the admin's model permissions) and their
tokens of scope ``webhooks``: ``/api/v1/webhooks/`` (list, create), ``/{id}/`` (read,
change, delete) and ``/{id}/deliveries/`` (its deliveries, newest first, and their attempts), the same
saves as the admin's form (``webhook_endpoint_save``). The secret is written, never read back."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, validate_webhook_url
from .webhook_endpoints import webhook_endpoint_delete, webhook_endpoint_save


class ManagesWebhooks(BasePermission):
    """The admin's model permissions, per method: platform admins view, add and change
    endpoints; deleting one (rather than disabling it) takes ``delete_webhookendpoint``, which
    only a superuser has by default, as in the admin."""

    ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change", "PATCH": "change"}

    def has_permission(self, request, view):
        return request.user.has_perm(f"governance.{self.ACTIONS.get(request.method, 'delete')}_webhookendpoint")


class WebhookIO(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Required to create; empty or absent keeps it.",
    )
    events = serializers.ListField(child=serializers.CharField(max_length=64), max_length=200)
    # DRF drops a model URLField's URLValidator for its own, which takes ftp:// too
    url = serializers.URLField(max_length=500, validators=[validate_webhook_url])

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "secret", "events", "active", "consecutive_failures", "disabled_reason"]
        read_only_fields = ["consecutive_failures", "disabled_reason"]


class AttemptOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["at", "status_code", "error", "duration_ms"]


class DeliveryOut(serializers.ModelSerializer):
    log = AttemptOut(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event", "created_at", "attempts", "next_attempt_at", "delivered_at", "abandoned", "log"]


class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Where Warden posts the audit events each endpoint subscribes to (docs/runbook.md)."""

    model = WebhookEndpoint
    serializer_class = WebhookIO
    permission_classes = [ManagesWebhooks]
    lookup_value_converter = "id"
    token_scopes = {method: ("webhooks",) for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return self.model.objects.all()

    def perform_create(self, serializer) -> None:
        secret = serializer.validated_data.pop("secret", "")
        serializer.instance = webhook_endpoint_save(
            endpoint=WebhookEndpoint(**serializer.validated_data), actor=self.request.user, secret=secret
        )

    def perform_update(self, serializer) -> None:
        secret = serializer.validated_data.pop("secret", "")
        endpoint = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(endpoint, field, value)
        serializer.instance = webhook_endpoint_save(endpoint=endpoint, actor=self.request.user, secret=secret)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        webhook_endpoint_delete(endpoint=instance, actor=self.request.user)

    @extend_schema(responses={200: DeliveryOut(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The endpoint's deliveries, newest first, a page at a time, each with its attempts."""
        endpoint = self.get_object()
        page = self.paginate_queryset(endpoint.deliveries.prefetch_related("log"))
        return self.get_paginated_response(DeliveryOut(page, many=True).data)
