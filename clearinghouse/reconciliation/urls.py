from django.urls import path

from . import views

app_name = "reconciliation"

urlpatterns = [
    path("discrepancies/", views.QueueView.as_view(), name="queue"),
    path("discrepancies/<uuid:pk>/", views.DetailView.as_view(), name="detail"),
    path("reconciliation/", views.RunsView.as_view(), name="runs"),
]
