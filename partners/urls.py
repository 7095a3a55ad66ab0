from django.urls import path

from . import views

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
]
