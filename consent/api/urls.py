from django.urls import path
from rest_framework.routers import SimpleRouter

from .notices import NoticeViewSet
from .views import CatalogueView, ConsentStatusView, ConsentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("consents", ConsentViewSet, basename="consent")
router.register("notices", NoticeViewSet, basename="notice")

urlpatterns = [
    path("consents/status", ConsentStatusView.as_view(), name="consent-status"),
    path("consents/catalogue", CatalogueView.as_view(), name="consent-catalogue"),
    *router.urls,
]
