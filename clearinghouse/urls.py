from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from consent import views as consent_views
from partners.forms import PortalAuthenticationForm

from . import views

api_v1 = [
    path("", include("partners.api.urls")),
    path("", include("consent.api.urls")),
    path("", include("clearinghouse.records.api.urls")),
    path("", include("clearinghouse.reconciliation.api.urls")),
    path("", include("telemetry.api.urls")),
    # Anything else under /api/ is a problem+json 404, in DEBUG too.
    re_path(r"^.*$", views.api_not_found),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=PortalAuthenticationForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("portal/", include("partners.urls")),
    path("portal/", include("clearinghouse.records.urls")),
    path("portal/", include("clearinghouse.reconciliation.urls")),
    path("portal/", include("telemetry.urls")),
    path("me/", include("consent.urls")),
    path(
        ".well-known/clearinghouse-receipt-keys.json",
        consent_views.receipt_keys,
        name="receipt-keys",
    ),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]

handler400 = "clearinghouse.views.bad_request"
handler403 = "clearinghouse.views.permission_denied"
handler404 = "clearinghouse.views.page_not_found"
handler500 = "clearinghouse.views.server_error"
