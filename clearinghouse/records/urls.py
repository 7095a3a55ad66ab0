from django.urls import path

from . import views

# Included under the "records" namespace by the project's URL conf, beside the timelines' pages.
urlpatterns = [
    path("records/", views.SearchView.as_view(), name="search"),
    path("records/upload/", views.UploadView.as_view(), name="upload"),
    path("records/uploads/<uuid:pk>/", views.UploadStatusView.as_view(), name="upload-status"),
    path(
        "records/uploads/<uuid:pk>/errors.csv",
        views.UploadErrorsView.as_view(),
        name="upload-errors",
    ),
]
