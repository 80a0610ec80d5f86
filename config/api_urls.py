from django.urls import path, register_converter
from rest_framework.routers import SimpleRouter

from decisions.api import VersionGate, VersionReport, VersionReports
from decisions.attestation_api import VersionAttestation
from decisions.feed_api import Feed
from decisions.records_api import DeploymentViewSet, ExemptionViewSet
from decisions.version_api import PluginVersionCreate, VersionResubmit, VersionSubmit, VersionViewSet, VersionWithdraw
from governance.ids import IdConverter
from governance.webhooks_api import WebhookViewSet
from reviews.api import AdvisoryImport
from reviews.findings_api import FindingViewSet
from reviews.threads_api import ThreadViewSet
from submissions.api import PluginViewSet

register_converter(IdConverter, "id")
router = SimpleRouter(use_regex_path=False)  # ids through the converter (VisibleViewSet.lookup_value_converter)
router.register("versions", VersionViewSet, basename="version")
router.register("findings", FindingViewSet, basename="finding")
router.register("plugins", PluginViewSet, basename="plugin")
router.register("threads", ThreadViewSet, basename="thread")
router.register("exemptions", ExemptionViewSet, basename="exemption")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = [
    path("plugins/<id:plugin>/versions/", PluginVersionCreate.as_view(), name="plugin-versions"),
    path("advisories/", AdvisoryImport.as_view(), name="advisories"),
    path("feed/", Feed.as_view(), name="feed"),
    path("versions/<id:version>/reports/", VersionReports.as_view(), name="version-reports"),
    path("versions/<id:version>/reports/<id:run>/", VersionReport.as_view(), name="version-report"),
    path("versions/<id:version>/gate/", VersionGate.as_view(), name="version-gate"),
    path("versions/<id:version>/attestation/", VersionAttestation.as_view(), name="version-attestation"),
    path("versions/<id:version>/submit/", VersionSubmit.as_view(), name="version-submit"),
    path("versions/<id:version>/resubmit/", VersionResubmit.as_view(), name="version-resubmit"),
    path("versions/<id:version>/withdraw/", VersionWithdraw.as_view(), name="version-withdraw"),
    *router.urls,
]
