from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# Rubrics, ratings, policies, evaluations, decisions and exemptions moved from the governance app
# to decisions (docs/architecture.md): links in notifications sent before the move still work.
MOVED_TO_DECISIONS = "riskrubric|riskrating|policy|policyevaluation|decision|exemption"

urlpatterns = [
    re_path(
        rf"^admin/governance/(?P<rest>(?:{MOVED_TO_DECISIONS})/.*)$",
        RedirectView.as_view(url="/admin/decisions/%(rest)s", query_string=True, permanent=True),
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
