"""The signed attestation of a version's approval over REST, and Warden's public key at
well-known addresses, which hosts fetch once and keep (docs/hosts.md, "Verifying an attestation")."""

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from governance.errors import NotFound
from submissions.models import PluginVersion
from submissions.selectors import versions_visible_to
from submissions.tokens import token_allows

from .attestation_keys import attestation_key_load
from .attestations import attestation_body, attestation_of

ENVELOPE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="The DSSE envelope (`payloadType` application/vnd.in-toto+json, `payload` the base64 in-toto "
    "statement, `signatures` with `keyid` and `sig`), as canonical JSON: its SHA-256 is the feed's "
    "`attestation.sha256` and the ETag.",
)


class VersionAttestation(APIView):
    """``GET /api/v1/versions/{id}/attestation/``: the envelope of the version's approval; 404
    when it was not approved (or the caller may not see it). Host platforms (``read_feed``) may
    read the attestation of any version the feed lists, as its entries link here. A revoked
    version keeps its attestation: the feed says it is revoked."""

    token_scopes = {"GET": ("read", "feed")}

    @extend_schema(responses={200: ENVELOPE, 404: OpenApiResponse(description="Not approved, or not visible.")})
    def get(self, request: Request, version: int) -> HttpResponse:
        readable = (
            PluginVersion.objects.all()
            if request.user.has_perm("decisions.read_feed") and token_allows(request, "feed")
            else versions_visible_to(user=request.user)
        )
        target = get_object_or_404(readable, pk=version)
        attestation = attestation_of(version=target)
        if attestation is None:
            raise NotFound(f"{target} has no attestation: it has not been approved.", code="no_attestation")
        return HttpResponse(
            attestation_body(attestation), content_type="application/json", headers={"ETag": f'"{attestation.sha256}"'}
        )


@require_safe
def attestation_key_pem(request: HttpRequest) -> HttpResponse:
    """``/.well-known/warden-attestation-key.pem``: the public key, for anyone."""
    key = attestation_key_load(path=settings.WARDEN_ATTESTATION_KEY)
    return HttpResponse(key.public_pem, content_type="application/x-pem-file", headers={"X-Key-Id": key.keyid})


@require_safe
def attestation_key_json(request: HttpRequest) -> HttpResponse:
    """``/.well-known/warden-attestation-key.json``: the same key as securesystemslib reads it."""
    key = attestation_key_load(path=settings.WARDEN_ATTESTATION_KEY)
    return HttpResponse(json.dumps(key.public_document(), indent=2) + "\n", content_type="application/json")
