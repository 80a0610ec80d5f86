from rest_framework.routers import SimpleRouter

from submissions.api import VersionViewSet

router = SimpleRouter()
router.register("versions", VersionViewSet, basename="version")

urlpatterns = router.urls
