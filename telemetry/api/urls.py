from django.urls import path

from . import views

urlpatterns = [
    path("telemetry/readings", views.ReadingsView.as_view(), name="telemetry-readings"),
    path("telemetry/devices", views.DevicesView.as_view(), name="telemetry-devices"),
    path(
        "telemetry/devices/<str:serial>",
        views.DeviceDetailView.as_view(),
        name="telemetry-device-detail",
    ),
    path("telemetry/rules", views.RulesView.as_view(), name="telemetry-rules"),
    path(
        "telemetry/rules/<int:pk>/<str:action>",
        views.RuleActiveView.as_view(),
        name="telemetry-rule-active",
    ),
    path("telemetry/signals", views.SignalsView.as_view(), name="telemetry-signals"),
    path("telemetry/signals/<int:pk>", views.SignalDetailView.as_view(), name="telemetry-signal"),
    path(
        "telemetry/signals/<int:pk>/<str:action>",
        views.SignalActionView.as_view(),
        name="telemetry-signal-action",
    ),
]
