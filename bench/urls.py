"""The project's URLs plus the naive ingest endpoint the ingest benchmark compares against."""

from django.urls import path

from clearinghouse.urls import handler400, handler403, handler404, handler500  # noqa: F401
from clearinghouse.urls import urlpatterns as project_urlpatterns

from .naive import NaiveRecordsView
from .naive_telemetry import NaiveReadingsView

urlpatterns = [
    path("api/bench/naive-records", NaiveRecordsView.as_view(), name="bench-naive-records"),
    path("api/bench/naive-readings", NaiveReadingsView.as_view(), name="bench-naive-readings"),
    *project_urlpatterns,
]
