from django.urls import path

from . import views
from .agreements import views as agreement_views
from .webhooks import views as webhook_views

app_name = "portal"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("register/", views.RegisterView.as_view(), name="register"),
    path("activity/", views.ActivityView.as_view(), name="activity"),
    path("staff/", views.StaffListView.as_view(), name="staff"),
    path("staff/invite/", views.StaffInviteView.as_view(), name="staff-invite"),
    path("staff/<int:pk>/", views.MembershipUpdateView.as_view(), name="staff-update"),
    path(
        "invitations/<uuid:pk>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="invitation-revoke",
    ),
    path("join/<str:token>/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("credentials/", views.CredentialListView.as_view(), name="credentials"),
    path("credentials/new/", views.CredentialCreateView.as_view(), name="credential-create"),
    path(
        "credentials/<uuid:pk>/revoke/",
        views.CredentialRevokeView.as_view(),
        name="credential-revoke",
    ),
    # sharing agreements
    path("agreements/", agreement_views.AgreementListView.as_view(), name="agreements"),
    path("agreements/new/", agreement_views.AgreementProposeView.as_view(), name="agreement-new"),
    path(
        "agreements/<uuid:pk>/",
        agreement_views.AgreementDetailView.as_view(),
        name="agreement-detail",
    ),
    path(
        "agreements/<uuid:pk>/propose/",
        agreement_views.AgreementProposeView.as_view(),
        name="agreement-propose",
    ),
    path(
        "agreements/<uuid:pk>/diff/",
        agreement_views.AgreementDiffView.as_view(),
        name="agreement-diff",
    ),
    *(
        path(
            f"agreements/<uuid:pk>/{action}/",
            agreement_views.AgreementActionView.as_view(action=action),
            name=f"agreement-{action}",
        )
        for action in ("countersign", "reject", "withdraw", "suspend", "resume", "terminate")
    ),
    # webhooks
    path("webhooks/", webhook_views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/new/", webhook_views.WebhookCreateView.as_view(), name="webhook-create"),
    path("webhooks/<uuid:pk>/", webhook_views.WebhookDetailView.as_view(), name="webhook-detail"),
    *(
        path(
            f"webhooks/<uuid:pk>/{action}/",
            webhook_views.WebhookActionView.as_view(action=action),
            name=f"webhook-{action}",
        )
        for action in ("test", "rotate", "disable", "enable")
    ),
    path(
        "webhooks/deliveries/<uuid:pk>/",
        webhook_views.DeliveryDetailView.as_view(),
        name="webhook-delivery",
    ),
    path(
        "webhooks/deliveries/<uuid:pk>/redeliver/",
        webhook_views.DeliveryRedeliverView.as_view(),
        name="webhook-redeliver",
    ),
]
