from django.urls import path

from . import views

urlpatterns = [
    path(
        "units/<str:gtin>/<str:serial>/timeline",
        views.UnitTimelineView.as_view(),
        name="unit-timeline",
    ),
    path("customers/timeline", views.CustomerTimelineView.as_view(), name="customer-timeline"),
]
