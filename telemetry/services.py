"""Writes of telemetry: devices, readings, roll-ups, rules, signals and customer prompts."""

import logging

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from clearinghouse.records.gtin import normalise_gtin
from clearinghouse.records.ingest import SERIAL

from .ingest import ReadingBatch
from .models import CustomerPrompt, Device, ServiceRule, ServiceSignal
from .rules import rule_matches, validate_conditions

logger = logging.getLogger(__name__)
DEVICE_FIELDS = {"serial", "gtin", "model_name", "firmware"}


def _clean_device(row):
    errors = {}
    if not isinstance(row, dict):
        return None, {"device": "must be a JSON object"}
    for name in sorted(set(row) - DEVICE_FIELDS):
        errors[name] = "is not a field of a device"
    serial = row.get("serial")
    if not isinstance(serial, str) or not SERIAL.match(serial):
        errors["serial"] = "is required: 1-64 letters, digits or . _ / -"
    gtin = None
    try:
        gtin = normalise_gtin(row.get("gtin"))
    except ValueError as exc:
        errors["gtin"] = f"GTIN {exc}"
    model_name = row.get("model_name")
    if not isinstance(model_name, str) or not model_name.strip() or len(model_name) > 100:
        errors["model_name"] = "is required: up to 100 characters"
    firmware = row.get("firmware", "")
    if not isinstance(firmware, str) or len(firmware) > 50:
        errors["firmware"] = "must be text of up to 50 characters"
    if errors:
        return None, errors
    return {
        "serial": serial,
        "gtin": gtin,
        "model_name": model_name.strip(),
        "firmware": firmware,
    }, None


def devices_register(*, partner, rows):
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


def readings_ingest(*, partner, rows, max_rows):
    """Ingest an iterable of reading dicts (or ``(None, message)`` for unparseable rows) in one
    transaction; returns {accepted, duplicates, rejected, errors}. After commit, the touched
    devices' roll-ups are refreshed and their rules evaluated by workers. ``BatchTooLarge`` and
    any error raised by the iterable roll everything back."""
    from . import tasks

    with transaction.atomic():
        batch = ReadingBatch(partner=partner, max_rows=max_rows)
        for row in rows:
            if isinstance(row, tuple):
                batch.reject(row[1])
            else:
                batch.add(row)
        summary = batch.finish()
        if batch.device_ids and summary["accepted"]:
            ids = sorted(batch.device_ids)
            span = [batch.first_ts.isoformat(), batch.last_ts.isoformat()]
            transaction.on_commit(lambda: tasks.refresh_rollups.delay(ids, *span), robust=True)
            transaction.on_commit(lambda: tasks.evaluate_rules.delay(ids), robust=True)
    return summary


ROLLUP_SQL = """
INSERT INTO {table} (device_id, metric, bucket, count, min, max, avg, sum)
SELECT device_id, metric, date_trunc(%(unit)s, ts, 'UTC'), count(*), min(value), max(value),
       avg(value), sum(value)
FROM telemetry_reading
WHERE device_id = ANY(%(devices)s)
  AND ts >= date_trunc(%(unit)s, %(start)s::timestamptz, 'UTC')
  AND ts < date_trunc(%(unit)s, %(end)s::timestamptz, 'UTC') + %(step)s::interval
GROUP BY 1, 2, 3
ON CONFLICT (device_id, metric, bucket) DO UPDATE
SET count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
    sum = EXCLUDED.sum
"""


def rollups_refresh(*, device_ids, start, end):
    """Recompute the hourly and daily buckets that [start, end] touches for these devices from
    the raw readings. A recomputation, not an increment: running it twice is harmless."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table, unit, step in (
            ("telemetry_hourlyrollup", "hour", "1 hour"),
            ("telemetry_dailyrollup", "day", "1 day"),
        ):
            cursor.execute(
                ROLLUP_SQL.format(table=table),
                {
                    "unit": unit,
                    "devices": list(device_ids),
                    "start": start,
                    "end": end,
                    "step": step,
                },
            )


def rule_create(*, partner, model_name, name, issue, conditions, operator="and", prompt_text=""):
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


def rule_set_active(*, rule, active):
    """Switch a rule on or off. Its live signals stay as they are; an inactive rule opens none."""
    rule.active = bool(active)
    rule.save(update_fields=["active"])
    return rule


def rules_evaluate(*, device_ids, kinds=None):
    """Evaluate the active rules of the devices' models over these devices; open a signal for
    each new match (at most one live per device and rule). Idempotent. Returns the new signals."""
    devices = list(Device.objects.unscoped().filter(pk__in=device_ids))
    # A task holds device ids, not a partner: the rules are found through the devices' own
    # manufacturer and model, so no partner reaches another's rules.
    by_key = {}
    for d in devices:
        by_key.setdefault((d.manufacturer_id, d.model_name), []).append(d.pk)
    opened = []
    for (maker_id, model_name), ids in by_key.items():
        rules = ServiceRule.objects.unscoped().filter(
            manufacturer_id=maker_id, model_name=model_name, active=True
        )
        for rule in rules:
            if kinds and not any(c["kind"] in kinds for c in rule.conditions):
                continue
            matches = rule_matches(rule, ids)
            for device_id, evidence in matches.items():
                signal = _signal_open(rule=rule, device_id=device_id, evidence=evidence)
                if signal is not None:
                    opened.append(signal)
    return opened


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
        signal = ServiceSignal.objects.unscoped().select_related("device", "rule").get(pk=row[0])
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


def signal_transition(*, signal, action):
    """Acknowledge, resolve or dismiss a signal; refuses transitions from a closed state."""
    if action not in TRANSITIONS:
        raise ValidationError({"action": f"must be one of {', '.join(TRANSITIONS)}"})
    allowed, target = TRANSITIONS[action]
    with transaction.atomic():
        locked = ServiceSignal.objects.unscoped().select_for_update().get(pk=signal.pk)
        if locked.status not in allowed:
            raise ValidationError({"status": f"a {locked.status} signal cannot be {target}"})
        locked.status = target
        locked.status_changed_at = timezone.now()
        locked.save(update_fields=["status", "status_changed_at"])
    return locked


def prompt_decide(*, prompt, accept):
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


def prompt_accept(*, prompt):
    return prompt_decide(prompt=prompt, accept=True)


def prompt_decline(*, prompt):
    return prompt_decide(prompt=prompt, accept=False)
