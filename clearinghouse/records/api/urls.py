from django.urls import path

from . import views

urlpatterns = [
    path("records", views.RecordsView.as_view(), name="records"),
    path("records/<uuid:ref>", views.RecordDetailView.as_view(), name="record-detail"),
    path(
        "units/<str:gtin>/<str:serial>/timeline",
        views.UnitTimelineView.as_view(),
        name="unit-timeline",
    ),
    path("customers/timeline", views.CustomerTimelineView.as_view(), name="customer-timeline"),
]
