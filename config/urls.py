from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.defaults import page_not_found
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from decisions import tuf_views
from decisions.attestation_api import attestation_key_json, attestation_key_pem

# Rubrics, ratings, policies, evaluations, decisions and exemptions moved from the governance app
# to decisions (docs/architecture.md): links in notifications sent before the move still work.
MOVED_TO_DECISIONS = "riskrubric|riskrating|policy|policyevaluation|decision|exemption"

urlpatterns = [
    re_path(
        rf"^admin/governance/(?P<rest>(?:{MOVED_TO_DECISIONS})/.*)$",
        RedirectView.as_view(url="/admin/decisions/%(rest)s", query_string=True, permanent=True),
    ),
    path("admin/", admin.site.urls),
    # Warden's attestation public key (docs/hosts.md): hosts fetch it once and verify offline.
    path(".well-known/warden-attestation-key.pem", attestation_key_pem, name="attestation-key-pem"),
    path(".well-known/warden-attestation-key.json", attestation_key_json, name="attestation-key-json"),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The API's documentation, from Warden's static files (drf-spectacular-sidecar), under the
    # Content-Security-Policy: Swagger UI's script is a request of its own; Redoc, which writes
    # <style> elements as it renders and searches in a worker it makes from a blob, may do both
    # on its page (and nothing else may). Its sidebar's logo, from Redocly's CDN, stays blocked.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        csp_replace({"style-src": [SELF, UNSAFE_INLINE], "worker-src": [SELF, "blob:"]})(
            SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
    # The TUF repository hosts update through (docs/hosts.md "Updating through TUF").
    path("tuf/<int:version>.root.json", tuf_views.root, name="tuf-root"),
    path("tuf/timestamp.json", tuf_views.timestamp, name="tuf-timestamp"),
    re_path(r"^tuf/(?P<version>[0-9]+)\.(?P<role>targets|snapshot|bins-[0-9a-f]{2})\.json$", tuf_views.metadata),
    path("tuf/targets/<path:path>", tuf_views.target, name="tuf-target"),
]


def handler404(request, exception):
    """Under ``/api/`` every answer is JSON, an unknown path too; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": "No such endpoint.", "errors": []}, status=404)
    return page_not_found(request, exception)
