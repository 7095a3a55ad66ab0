"""Reads of telemetry for one partner (its own devices, rules and signals)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from partners.models import Partner
from partners.tenancy import require_partner

from .models import Device, HourlyRollup, ServiceRule, ServiceSignal

SILENT_AFTER = timedelta(hours=24)


def device_list(*, partner: Partner) -> QuerySet[Device]:
    return Device.objects.for_partner(partner)


def device_get(*, partner: Partner, serial: str) -> Device:
    """The partner's device by serial; ``Device.DoesNotExist`` for a missing or foreign one."""
    return Device.objects.for_partner(partner).get(serial=serial)


def rule_list(*, partner: Partner) -> QuerySet[ServiceRule]:
    return ServiceRule.objects.for_partner(partner)


def signal_list(*, partner: Partner, status: str | None = None) -> QuerySet[ServiceSignal]:
    qs = ServiceSignal.objects.for_partner(partner).select_related("device", "rule")
    return qs.filter(status=status) if status else qs


def fleet_health(*, partner: Partner, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per product model: devices, silent devices (nothing for 24 h) and live signals."""
    now = now or timezone.now()
    silent = Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=now - SILENT_AFTER)
    rows = (
        Device.objects.for_partner(partner)
        .values("model_name")
        .annotate(
            devices=Count("id", distinct=True),
            silent=Count("id", filter=silent, distinct=True),
            open_signals=Count(
                "signals", filter=Q(signals__status__in=ServiceSignal.LIVE), distinct=True
            ),
            last_seen=Max("last_seen_at"),
        )
        .order_by("model_name")
    )
    return list(rows)


def device_series(
    *, partner: Partner, device: Device, start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, float, float, float]]]:
    """{metric: [(bucket, avg, min, max)]} of the device's hourly roll-ups in [start, end).
    ``Device.DoesNotExist`` for another partner's device, exactly like ``device_get``."""
    require_partner(partner, "Device series")
    if device.manufacturer_id != partner.pk:
        raise Device.DoesNotExist("No such device.")
    out = {}
    rows = (
        HourlyRollup.objects.filter(device=device, bucket__gte=start, bucket__lt=end)
        .order_by("metric", "bucket")
        .values_list("metric", "bucket", "avg", "min", "max")
    )
    for metric, bucket, avg, lo, hi in rows:
        out.setdefault(metric, []).append((bucket, avg, lo, hi))
    return out
