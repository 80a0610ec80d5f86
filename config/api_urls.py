from django.urls import path
from rest_framework.routers import SimpleRouter

from decisions.api import VersionGate, VersionReports
from decisions.attestation_api import VersionAttestation
from decisions.feed_api import Feed
from decisions.version_api import PluginVersionCreate, VersionResubmit, VersionSubmit, VersionViewSet, VersionWithdraw
from reviews.api import AdvisoryImport
from reviews.findings_api import FindingViewSet
from submissions.api import PluginViewSet

router = SimpleRouter()
router.register("versions", VersionViewSet, basename="version")
router.register("findings", FindingViewSet, basename="finding")
router.register("plugins", PluginViewSet, basename="plugin")

urlpatterns = [
    path("plugins/<int:plugin>/versions/", PluginVersionCreate.as_view(), name="plugin-versions"),
    path("advisories/", AdvisoryImport.as_view(), name="advisories"),
    path("feed/", Feed.as_view(), name="feed"),
    path("versions/<int:version>/reports/", VersionReports.as_view(), name="version-reports"),
    path("versions/<int:version>/gate/", VersionGate.as_view(), name="version-gate"),
    path("versions/<int:version>/attestation/", VersionAttestation.as_view(), name="version-attestation"),
    path("versions/<int:version>/submit/", VersionSubmit.as_view(), name="version-submit"),
    path("versions/<int:version>/resubmit/", VersionResubmit.as_view(), name="version-resubmit"),
    path("versions/<int:version>/withdraw/", VersionWithdraw.as_view(), name="version-withdraw"),
    *router.urls,
]
