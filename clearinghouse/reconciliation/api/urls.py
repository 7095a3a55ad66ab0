from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    DiscrepancyViewSet,
    RunViewSet,
    WarrantyTermsDetailView,
    WarrantyTermsListView,
)

router = SimpleRouter(trailing_slash=False)
router.register("discrepancies", DiscrepancyViewSet, basename="discrepancy")
router.register("reconciliation/runs", RunViewSet, basename="reconciliation-run")

urlpatterns = [
    *router.urls,
    path("warranty-terms", WarrantyTermsListView.as_view(), name="warranty-terms"),
    path(
        "warranty-terms/<int:pk>", WarrantyTermsDetailView.as_view(), name="warranty-terms-detail"
    ),
]
