"""Operator views of telemetry: read-only lists (writes go through the services)."""

from django.contrib import admin

from partners.admin import OperatorView

from .models import CustomerPrompt, Device, ServiceRule, ServiceSignal, TelemetrySettings


class ReadOnly(OperatorView, admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Device)
class DeviceAdmin(ReadOnly):
    list_display = ["serial", "manufacturer", "model_name", "gtin", "firmware", "last_seen_at"]
    list_filter = ["manufacturer", "model_name"]
    search_fields = ["serial", "gtin"]


@admin.register(ServiceRule)
class ServiceRuleAdmin(ReadOnly):
    list_display = ["name", "manufacturer", "model_name", "operator", "active", "created_at"]
    list_filter = ["manufacturer", "active"]


@admin.register(ServiceSignal)
class ServiceSignalAdmin(ReadOnly):
    list_display = ["__str__", "device", "rule", "status", "opened_at", "service_request_ref"]
    list_filter = ["status"]
    list_select_related = ["device", "rule"]


@admin.register(CustomerPrompt)
class CustomerPromptAdmin(ReadOnly):
    list_display = ["__str__", "retailer", "status", "created_at", "decided_at"]
    list_filter = ["status"]


@admin.register(TelemetrySettings)
class TelemetrySettingsAdmin(OperatorView, admin.ModelAdmin):
    """Retention is an operator setting (agreed with the manufacturer)."""

    list_display = ["partner", "retention_days"]
