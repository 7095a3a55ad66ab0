"""Writes of telemetry: devices, readings, roll-ups, rules, signals and customer prompts."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from clearinghouse.records.gtin import normalise_gtin
from clearinghouse.records.ingest import SERIAL
from partners.models import Partner

from .ingest import ReadingBatch, ReadingsSummary
from .models import CustomerPrompt, Device, PendingBatch, ServiceRule, ServiceSignal
from .rules import Condition, rule_matches, validate_conditions

logger = logging.getLogger(__name__)
DEVICE_FIELDS = {"serial", "gtin", "model_name", "firmware"}


def _text(value, max_length):
    """Text PostgreSQL can store (no NUL character) of at most ``max_length`` characters."""
    return isinstance(value, str) and len(value) <= max_length and "\x00" not in value


def _clean_device(row):
    errors = {}
    if not isinstance(row, dict):
        return None, {"device": "must be a JSON object"}
    for name in sorted(set(row) - DEVICE_FIELDS):
        errors[name] = "is not a field of a device"
    serial = row.get("serial")
    if not isinstance(serial, str) or not SERIAL.fullmatch(serial):
        errors["serial"] = "is required: 1-64 letters, digits or . _ / -"
    gtin = None
    try:
        gtin = normalise_gtin(row.get("gtin"))
    except ValueError as exc:
        errors["gtin"] = f"GTIN {exc}"
    model_name = row.get("model_name")
    if not _text(model_name, 100) or not model_name.strip():
        errors["model_name"] = "is required: up to 100 characters"
    firmware = row.get("firmware", "")
    if not _text(firmware, 50):
        errors["firmware"] = "must be text of up to 50 characters"
    if errors:
        return None, errors
    return {
        "serial": serial,
        "gtin": gtin,
        "model_name": model_name.strip(),
        "firmware": firmware,
    }, None


def devices_register(*, partner: Partner, rows: Iterable[object]) -> list[Device]:
    """Register devices (or update model name, GTIN and firmware of ones already registered by
    serial) in one transaction. All-or-nothing: any invalid row raises ``ValidationError`` with
    {"<index>.<field>": message} and stores nothing. Returns the devices in input order."""
    if partner.kind != "manufacturer":
        raise ValidationError({"device": "Only manufacturers register devices."})
    clean, errors = [], {}
    for i, row in enumerate(rows):
        c, e = _clean_device(row)
        for name, message in (e or {}).items():
            errors[f"{i}.{name}"] = message
        clean.append(c)
    serials = [c["serial"] for c in clean if c]
    if len(serials) != len(set(serials)):
        errors["serial"] = "a serial appears twice in this request"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO telemetry_device
                       (manufacturer_id, serial, gtin, model_name, firmware, registered_at)
                   SELECT %s, s, g, m, f, now()
                   FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS t(s, g, m, f)
                   ON CONFLICT (manufacturer_id, serial) DO UPDATE
                   SET gtin = EXCLUDED.gtin, model_name = EXCLUDED.model_name,
                       firmware = EXCLUDED.firmware""",
                [
                    partner.pk,
                    serials,
                    [c["gtin"] for c in clean],
                    [c["model_name"] for c in clean],
                    [c["firmware"] for c in clean],
                ],
            )
        by_serial = {
            d.serial: d for d in Device.objects.for_partner(partner).filter(serial__in=serials)
        }
    return [by_serial[s] for s in serials]


def readings_ingest(*, partner: Partner, rows: Iterable[object], max_rows: int) -> ReadingsSummary:
    """Ingest an iterable of reading dicts (or ``BadRow`` for unparseable rows) in one
    transaction; returns {accepted, duplicates, rejected, errors}. After commit, the touched
    devices' roll-ups are refreshed and their rules evaluated by workers. ``BatchTooLarge`` and
    any error raised by the iterable roll everything back."""
    from . import tasks

    with transaction.atomic():
        batch = ReadingBatch(partner=partner, max_rows=max_rows)
        batch.feed(rows)
        summary = batch.finish()
        if batch.device_ids and summary["accepted"]:
            # The outbox row commits with the readings; the task after commit is only the fast
            # path (see PendingBatch: the sweep does the work when Redis lost the task).
            pending = PendingBatch.objects.create(
                manufacturer=partner,
                device_ids=sorted(batch.device_ids),
                first_ts=batch.first_ts,
                last_ts=batch.last_ts,
            )
            batch_id = pending.pk
            transaction.on_commit(lambda: tasks.process_batch.delay(batch_id), robust=True)
    return summary


def pending_batch_process(*, batch_id: int) -> list[ServiceSignal] | None:
    """Do the work a committed batch owes: its rules, then the roll-ups of every batch of its
    manufacturer that is past its rules (``rollups_pending_refresh``), which deletes their outbox
    rows. Idempotent: a row already done is gone, and the work itself may run twice. Returns the
    signals it opened, or None when the row was already done. Rules first: they read the raw
    readings, not the roll-ups, and a signal should not wait for the charts."""
    given = PendingBatch.objects.unscoped("the task runs for the batch id it was given")
    pending = given.filter(pk=batch_id).first()
    if pending is None:
        return None
    opened = []
    if not pending.rules_done:
        opened = rules_evaluate(device_ids=pending.device_ids)
        given.filter(pk=pending.pk).update(rules_done=True)
    rollups_pending_refresh(manufacturer_id=pending.manufacturer_id)
    return opened


def rollups_pending_refresh(*, manufacturer_id: uuid.UUID) -> int:
    """Refresh the roll-ups owed by the manufacturer's batches that are past their rules, and
    delete their outbox rows, in one transaction. One refresher per manufacturer at a time: while
    one runs, another returns at once and leaves its rows to the next refresher (the next
    batch's task, else the minute sweep). Returns how many batches it cleared."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"telemetry:rollups:{manufacturer_id}"],
            )
            if not cursor.fetchone()[0]:
                return 0
        owed = PendingBatch.objects.unscoped("restricted to the manufacturer id the task was given")
        due = list(
            owed.select_for_update(skip_locked=True)
            .filter(manufacturer_id=manufacturer_id, rules_done=True)
            .values_list("pk", "device_ids", "first_ts", "last_ts")
        )
        for start, end, devices in _hour_spans(due):
            rollups_refresh(device_ids=sorted(devices), start=start, end=end)
        owed.filter(pk__in=[row[0] for row in due]).delete()
    return len(due)


def _hour_spans(batches):
    """Merge the batches' spans, in whole hours, into disjoint (start hour, end hour, device ids)
    spans: spans that overlap or touch become one, with the union of their devices."""
    spans = []
    hour = timedelta(hours=1)
    for _, devices, first, last in sorted(batches, key=lambda row: row[2]):
        start = first.replace(minute=0, second=0, microsecond=0)
        end = last.replace(minute=0, second=0, microsecond=0)
        if spans and start <= spans[-1][1] + hour:
            spans[-1][1] = max(spans[-1][1], end)
            spans[-1][2].update(devices)
        else:
            spans.append([start, end, set(devices)])
    return spans


def pending_batches_due(
    *, older_than: timedelta = timedelta(minutes=1), limit: int = 1000
) -> list[int]:
    """Ids of outbox rows whose work should have been done by now: their after-commit task was
    lost (or is still queued behind others; doing a row twice is harmless)."""
    return list(
        PendingBatch.objects.unscoped("the sweep works for every maker's batches")
        .filter(created_at__lte=timezone.now() - older_than)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


HOURLY_SQL = """
INSERT INTO telemetry_hourlyrollup (device_id, metric, bucket, count, min, max, avg, sum)
SELECT device_id, metric, date_trunc('hour', ts, 'UTC'), count(*), min(value), max(value),
       avg(value), sum(value)
FROM telemetry_reading
WHERE device_id = ANY(%(devices)s)
  AND ts >= date_trunc('hour', %(start)s::timestamptz, 'UTC')
  AND ts < date_trunc('hour', %(end)s::timestamptz, 'UTC') + interval '1 hour'
GROUP BY 1, 2, 3
ON CONFLICT (device_id, metric, bucket) DO UPDATE
SET count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
    sum = EXCLUDED.sum
"""
# A day from its hours, not from the raw readings: at a reading a minute from each of a few
# thousand device metrics a day holds millions of readings, and every batch would rescan them.
DAILY_SQL = """
INSERT INTO telemetry_dailyrollup (device_id, metric, bucket, count, min, max, avg, sum)
SELECT device_id, metric, date_trunc('day', bucket, 'UTC'), sum(count), min(min), max(max),
       sum(sum) / sum(count), sum(sum)
FROM telemetry_hourlyrollup
WHERE device_id = ANY(%(devices)s)
  AND bucket >= date_trunc('day', %(start)s::timestamptz, 'UTC')
  AND bucket < date_trunc('day', %(end)s::timestamptz, 'UTC') + interval '1 day'
GROUP BY 1, 2, 3
ON CONFLICT (device_id, metric, bucket) DO UPDATE
SET count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
    sum = EXCLUDED.sum
"""


def rollups_refresh(
    *, device_ids: Iterable[int], start: datetime | str, end: datetime | str
) -> None:
    """Recompute the hourly buckets that [start, end] touches for these devices from the raw
    readings, then their days from the hours. A recomputation, not an increment: running it
    twice is harmless. Every hour that holds readings has been refreshed by the batch that
    brought them, so a day summed from its hours equals a day computed from the readings.
    ``start`` and ``end`` may be ISO 8601 text (a task's JSON arguments): PostgreSQL reads it."""
    params = {"devices": list(device_ids), "start": start, "end": end}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(HOURLY_SQL, params)
        cursor.execute(DAILY_SQL, params)


def rule_create(
    *,
    partner: Partner,
    model_name: str,
    name: str,
    issue: str,
    conditions: list[Condition],
    operator: str = "and",
    prompt_text: str = "",
) -> ServiceRule:
    """A service rule for one of the manufacturer's product models."""
    errors = validate_conditions(conditions)
    if operator not in ServiceRule.Operator.values:
        errors.append("operator must be and or or")
    if errors:
        raise ValidationError({"conditions": errors})
    rule = ServiceRule(
        manufacturer=partner,
        model_name=model_name,
        name=name,
        issue=issue,
        conditions=conditions,
        operator=operator,
        prompt_text=prompt_text,
    )
    rule.full_clean()
    rule.save()
    return rule


def rule_set_active(*, rule: ServiceRule, active: bool) -> ServiceRule:
    """Switch a rule on or off. Its live signals stay as they are; an inactive rule opens none."""
    rule.active = bool(active)
    rule.save(update_fields=["active"])
    return rule


def rules_evaluate(
    *, device_ids: Iterable[int], kinds: Collection[str] | None = None
) -> list[ServiceSignal]:
    """Evaluate the active rules of the devices' models over these devices; open a signal for
    each new match (at most one live per device and rule). Idempotent. Returns the new signals."""
    # A task holds device ids, not a partner: the rules are found through the devices' own
    # manufacturer and model, so no partner reaches another's rules.
    given = Device.objects.unscoped("the task runs for the device ids it was given")
    devices = list(given.filter(pk__in=device_ids))
    by_key = {}
    for d in devices:
        by_key.setdefault((d.manufacturer_id, d.model_name), []).append(d.pk)
    opened = []
    for (maker_id, model_name), ids in by_key.items():
        rules = ServiceRule.objects.unscoped("the rules of the devices' own maker").filter(
            manufacturer_id=maker_id, model_name=model_name, active=True
        )
        for rule in rules:
            if kinds and not any(c["kind"] in kinds for c in rule.conditions):
                continue
            matches = rule_matches(rule, ids)
            _signals_note_clearing(rule=rule, device_ids=ids, holding=list(matches))
            for device_id, evidence in matches.items():
                signal = _signal_open(rule=rule, device_id=device_id, evidence=evidence)
                if signal is not None:
                    opened.append(signal)
    return opened


def _signals_note_clearing(*, rule, device_ids, holding):
    """Mark the rule's live signals on these devices whose condition no longer holds (from the
    first evaluation that found it so) and unmark those whose condition holds again."""
    live = ServiceSignal.objects.unscoped("the rule's own signals on its maker's devices").filter(
        rule=rule, device_id__in=device_ids, status__in=ServiceSignal.LIVE
    )
    live.filter(device_id__in=holding, condition_cleared_at__isnull=False).update(
        condition_cleared_at=None
    )
    live.exclude(device_id__in=holding).filter(condition_cleared_at__isnull=True).update(
        condition_cleared_at=timezone.now()
    )


def signals_resolve_cleared(*, now: datetime | None = None) -> int:
    """Resolve the open signals whose condition has not held for
    ``TELEMETRY_SIGNAL_CLEAR_MINUTES`` (0 switches this off: they stay marked, not resolved).
    Every committed batch re-evaluates its devices' rules, so a mark that is still there means
    no reading since has made the condition hold again. An acknowledged signal is left to the
    people who took it on (a visit may be booked): it only shows that its condition cleared.
    Returns how many were resolved."""
    minutes = settings.TELEMETRY_SIGNAL_CLEAR_MINUTES
    if minutes <= 0:
        return 0
    now = now or timezone.now()
    return (
        ServiceSignal.objects.unscoped("the sweep resolves every maker's cleared signals")
        .filter(
            status=ServiceSignal.Status.OPEN,
            condition_cleared_at__lte=now - timedelta(minutes=minutes),
        )
        .update(status=ServiceSignal.Status.RESOLVED, status_changed_at=now)
    )


def _signal_open(*, rule, device_id, evidence):
    from .care import signal_to_care

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO telemetry_servicesignal
                       (device_id, rule_id, opened_at, status, status_changed_at, evidence)
                   VALUES (%s, %s, now(), 'open', now(), %s::jsonb)
                   ON CONFLICT (device_id, rule_id) WHERE status IN ('open', 'acknowledged')
                   DO NOTHING RETURNING id""",
                [device_id, rule.pk, _json(evidence)],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        inserted = ServiceSignal.objects.unscoped("the signal just inserted, by its id")
        signal = inserted.select_related("device", "rule").get(pk=row[0])
        signal_to_care(signal=signal)
        return signal


def _json(value):
    import orjson

    return orjson.dumps(value).decode()


TRANSITIONS = {
    "acknowledge": ({"open"}, ServiceSignal.Status.ACKNOWLEDGED),
    "resolve": ({"open", "acknowledged"}, ServiceSignal.Status.RESOLVED),
    "dismiss": ({"open", "acknowledged"}, ServiceSignal.Status.DISMISSED),
}


def signal_transition(*, signal: ServiceSignal, action: str) -> ServiceSignal:
    """Acknowledge, resolve or dismiss a signal; refuses transitions from a closed state."""
    if action not in TRANSITIONS:
        raise ValidationError({"action": f"must be one of {', '.join(TRANSITIONS)}"})
    allowed, target = TRANSITIONS[action]
    with transaction.atomic():
        held = ServiceSignal.objects.unscoped("locks again the signal the caller holds")
        locked = held.select_for_update().get(pk=signal.pk)
        if locked.status not in allowed:
            raise ValidationError({"status": f"a {locked.status} signal cannot be {target}"})
        locked.status = target
        locked.status_changed_at = timezone.now()
        locked.save(update_fields=["status", "status_changed_at"])
    return locked


def prompt_decide(*, prompt: CustomerPrompt, accept: bool) -> CustomerPrompt:
    """The customer's answer to a prompt. Accepting tells the retailer (webhook
    ``service.signal`` with ``goodwill_suggested_points``)."""
    from .care import notify_retailer

    with transaction.atomic():
        locked = CustomerPrompt.objects.select_for_update().get(pk=prompt.pk)
        if locked.status != CustomerPrompt.Status.PENDING:
            return locked
        locked.status = CustomerPrompt.Status.ACCEPTED if accept else CustomerPrompt.Status.DECLINED
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decided_at"])
        if accept:
            notify_retailer(prompt=locked)
    return locked


def prompt_accept(*, prompt: CustomerPrompt) -> CustomerPrompt:
    return prompt_decide(prompt=prompt, accept=True)
