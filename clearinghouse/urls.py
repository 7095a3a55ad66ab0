from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularSwaggerSplitView,
)

from clearinghouse.records import urls as records_urls
from clearinghouse.timelines import urls as timelines_urls
from consent.dashboard import views as dashboard_views
from partners import views as partner_views
from partners.forms import OperatorAuthenticationForm

from . import views

api_v1 = [
    path("", include("partners.api.urls")),
    path("", include("consent.api.urls")),
    path("", include("clearinghouse.records.api.urls")),
    path("", include("clearinghouse.timelines.api.urls")),
    path("", include("clearinghouse.reconciliation.api.urls")),
    path("", include("telemetry.api.urls")),
    # Anything else under /api/ is a problem+json 404, in DEBUG too.
    re_path(r"^.*$", views.api_not_found),
]

# The operator's sign-in counts failed attempts like the portal's.
admin.site.login_form = OperatorAuthenticationForm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("admin/", admin.site.urls),
    path("accounts/login/", partner_views.SignInView.as_view(), name="login"),
    path(
        "accounts/password_reset/",
        partner_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("portal/", include("partners.urls")),
    # The records' pages and the timelines above them share one namespace (records:search,
    # records:unit, records:customer): a namespace is included once.
    path(
        "portal/",
        include(([*records_urls.urlpatterns, *timelines_urls.urlpatterns], "records")),
    ),
    path("portal/", include("clearinghouse.reconciliation.urls")),
    path("portal/", include("telemetry.urls")),
    path("portal/", include("consent.urls")),
    path("me/", include("consent.dashboard.urls")),
    path(
        ".well-known/clearinghouse-receipt-keys.json",
        dashboard_views.receipt_keys,
        name="receipt-keys",
    ),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Redoc styles itself with inline <style> elements, which the Content-Security-Policy
    # forbids; its old address leads to the Swagger UI, which works under the policy.
    path("api/redoc/", RedirectView.as_view(pattern_name="api-docs", permanent=True)),
]

handler400 = "clearinghouse.views.bad_request"
handler403 = "clearinghouse.views.permission_denied"
handler404 = "clearinghouse.views.page_not_found"
handler500 = "clearinghouse.views.server_error"
