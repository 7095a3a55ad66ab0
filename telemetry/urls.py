from django.urls import path

from . import views

app_name = "telemetry"

urlpatterns = [
    path("devices/", views.FleetView.as_view(), name="fleet"),
    path("devices/<str:serial>/", views.DeviceView.as_view(), name="device"),
    path("signals/", views.SignalsView.as_view(), name="signals"),
    path("signals/<int:pk>/<str:action>/", views.SignalActionView.as_view(), name="signal-action"),
    path("service-rules/", views.RulesView.as_view(), name="rules"),
    path(
        "service-rules/<int:pk>/<str:action>/", views.RuleActiveView.as_view(), name="rule-active"
    ),
    path("prompts/<int:pk>/<str:action>/", views.PromptDecideView.as_view(), name="prompt-decide"),
]
