from django.urls import path

from . import views

app_name = "reconciliation"

urlpatterns = [
    path("discrepancies/", views.QueueView.as_view(), name="queue"),
    path("discrepancies/<uuid:pk>/", views.DetailView.as_view(), name="detail"),
    path("reconciliation/", views.RunsView.as_view(), name="runs"),
    path("warranty-terms/", views.WarrantyTermsView.as_view(), name="warranty-terms"),
    path(
        "warranty-terms/<int:pk>/delete/",
        views.WarrantyTermsDeleteView.as_view(),
        name="warranty-terms-delete",
    ),
]
