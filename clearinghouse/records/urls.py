from django.urls import path

from . import views

app_name = "records"

urlpatterns = [
    path("records/", views.SearchView.as_view(), name="search"),
    path("records/upload/", views.UploadView.as_view(), name="upload"),
    path("records/uploads/<uuid:pk>/", views.UploadStatusView.as_view(), name="upload-status"),
    path(
        "records/uploads/<uuid:pk>/errors.csv",
        views.UploadErrorsView.as_view(),
        name="upload-errors",
    ),
    path("units/<str:gtin>/<str:serial>/", views.UnitTimelineView.as_view(), name="unit"),
    path("customers/<uuid:ref>/", views.CustomerTimelineView.as_view(), name="customer"),
]
