from django.urls import path

from . import views

urlpatterns = [
    path("records", views.RecordsView.as_view(), name="records"),
    path("records/<uuid:ref>", views.RecordDetailView.as_view(), name="record-detail"),
]
