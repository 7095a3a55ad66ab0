from rest_framework.routers import SimpleRouter

from .views import DiscrepancyViewSet, RunViewSet

router = SimpleRouter(trailing_slash=False)
router.register("discrepancies", DiscrepancyViewSet, basename="discrepancy")
router.register("reconciliation/runs", RunViewSet, basename="reconciliation-run")

urlpatterns = router.urls
