from django.urls import path

from . import views

# Included under the "records" namespace by the project's URL conf (``records:unit``,
# ``records:customer``), beside the records' own pages.
urlpatterns = [
    path("units/<str:gtin>/<str:serial>/", views.UnitTimelineView.as_view(), name="unit"),
    path("customers/<uuid:ref>/", views.CustomerTimelineView.as_view(), name="customer"),
]
