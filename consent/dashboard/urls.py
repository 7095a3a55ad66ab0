from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.SignInView.as_view(), name="sign-in"),
    path("sent/", views.link_sent, name="link-sent"),
    path("link/<str:token>/", views.MagicLinkView.as_view(), name="link"),
    path("signout/", views.SignOutView.as_view(), name="sign-out"),
    path("overview/", views.OverviewView.as_view(), name="overview"),
    path("consents/", views.ConsentsView.as_view(), name="consents"),
    path("receipts/<uuid:pk>/", views.ReceiptDownloadView.as_view(), name="receipt"),
    path("access/", views.AccessLogView.as_view(), name="access-log"),
    path("export/", views.ExportView.as_view(), name="export"),
    path("erase/", views.EraseView.as_view(), name="erase"),
]
