"""Service rule conditions: their validation and their set-based evaluation.

Each condition is evaluated with one SQL statement over the devices touched by a batch and
returns {device_id: evidence}, where evidence is the readings (ts, metric, value) that made it
hold. Time windows are anchored at the device's latest reading of the metric, not at the wall
clock, so late or back-filled batches are judged by their own time line. ``no_data`` alone looks
at the wall clock (it is about silence now).

Condition kinds (JSON objects in ``ServiceRule.conditions``):

- ``{"kind": "threshold", "metric", "op": ">"|"<", "value", "minutes"}`` — the metric has been
  beyond the value for at least N minutes (every reading in the run, the latest included).
- ``{"kind": "count", "metric", "value", "at_least", "minutes"}`` — the metric equalled the
  value at least K times within the last W minutes.
- ``{"kind": "cumulative", "metric", "at_least"}`` — the latest value is at least X.
- ``{"kind": "rate", "metric", "per_hour", "minutes"}`` — over the last W minutes the metric
  rose by more than X per hour (last minus first over the hours between them).
- ``{"kind": "no_data", "minutes"}`` — the device has sent nothing for N minutes.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils import timezone

from .catalogue import METRICS

if TYPE_CHECKING:
    from .models import ServiceRule

# One JSON object of ``ServiceRule.conditions``, as ``validate_conditions`` accepts it.
Condition = dict[str, Any]
# The readings that made a condition hold: {"ts", "metric", "value"} each.
Evidence = list[dict[str, Any]]

EVIDENCE_LIMIT = 20
KINDS = ("threshold", "count", "cumulative", "rate", "no_data")
_SHAPE = {
    "threshold": {"metric", "op", "value", "minutes"},
    "count": {"metric", "value", "at_least", "minutes"},
    "cumulative": {"metric", "at_least"},
    "rate": {"metric", "per_hour", "minutes"},
    "no_data": {"minutes"},
}


MAX_CONDITIONS = 20  # each is a statement per batch of readings: a rule's cost stays bounded
MAX_MINUTES = 60 * 24 * 90
_FIELD_SCHEMA = {
    "metric": {"type": "string", "enum": list(METRICS)},
    "op": {"type": "string", "enum": [">", "<"]},
    "value": {"type": "number"},
    "at_least": {"type": "number"},
    "per_hour": {"type": "number"},
    "minutes": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": MAX_MINUTES},
}
# The OpenAPI description of ``conditions``: what ``validate_conditions`` takes, said as a schema.
CONDITIONS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_CONDITIONS,
    "items": {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": [kind]},
                    **{name: _FIELD_SCHEMA[name] for name in sorted(shape)},
                },
                "required": ["kind", *sorted(shape)],
                "additionalProperties": False,
            }
            for kind, shape in _SHAPE.items()
        ]
    },
}


def validate_conditions(conditions: object) -> list[str]:
    """A list of messages; empty when every condition is well formed."""
    if not isinstance(conditions, list) or not conditions:
        return ["conditions must be a non-empty list"]
    if len(conditions) > MAX_CONDITIONS:
        return [f"a rule has at most {MAX_CONDITIONS} conditions"]
    errors = []
    for i, cond in enumerate(conditions):
        if not isinstance(cond, dict) or cond.get("kind") not in KINDS:
            errors.append(f"condition {i}: kind must be one of {', '.join(KINDS)}")
            continue
        want = _SHAPE[cond["kind"]] | {"kind"}
        if set(cond) != want:
            errors.append(f"condition {i}: needs exactly {', '.join(sorted(want))}")
            continue
        if "metric" in cond and cond["metric"] not in METRICS:
            errors.append(f"condition {i}: metric must be one of {', '.join(METRICS)}")
        if "op" in cond and cond["op"] not in (">", "<"):
            errors.append(f"condition {i}: op must be > or <")
        for name in ("value", "at_least", "per_hour", "minutes"):
            if name in cond and (
                isinstance(cond[name], bool) or not isinstance(cond[name], int | float)
            ):
                errors.append(f"condition {i}: {name} must be a number")
        if isinstance(cond.get("minutes"), int | float) and not 0 < cond["minutes"] <= MAX_MINUTES:
            errors.append(f"condition {i}: minutes must be above 0 and at most {MAX_MINUTES}")
    return errors


def describe(cond: Condition) -> str:
    kind = cond["kind"]
    if kind == "threshold":
        return f"{cond['metric']} {cond['op']} {cond['value']} for {cond['minutes']} min"
    if kind == "count":
        return (
            f"{cond['metric']} = {cond['value']} at least {cond['at_least']}× "
            f"in {cond['minutes']} min"
        )
    if kind == "cumulative":
        return f"{cond['metric']} ≥ {cond['at_least']}"
    if kind == "rate":
        return f"{cond['metric']} rising > {cond['per_hour']}/h over {cond['minutes']} min"
    return f"no data for {cond['minutes']} min"


def _fetch(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out = {}
    for device_id, ts, metric, value in rows:
        out.setdefault(device_id, [])
        if ts is not None and len(out[device_id]) < EVIDENCE_LIMIT:
            out[device_id].append({"ts": ts.isoformat(), "metric": metric, "value": value})
    return out


# Per device, through the (device_id, metric, ts) index: a lateral lookup for each device keeps
# the plan an index probe per device and partition whatever the planner believes of freshly
# written partitions (a join over them could become a scan of every partition).
_LATEST = """latest AS (
    SELECT d.device_id, m.at
    FROM unnest(%(devices)s::bigint[]) AS d(device_id),
         LATERAL (SELECT max(ts) AS at FROM telemetry_reading
                  WHERE device_id = d.device_id AND metric = %(metric)s) AS m
    WHERE m.at IS NOT NULL)"""


def _window(since):
    """The device's readings of the metric in (or from) ``since`` up to its latest one."""
    return f"""latest l, LATERAL (
        SELECT r.ts, r.value FROM telemetry_reading r
        WHERE r.device_id = l.device_id AND r.metric = %(metric)s
          AND r.ts {since} AND r.ts <= l.at) AS r"""  # noqa: S608 (constant SQL fragments only)


def _threshold(cond, devices):
    beyond = "r.value > %(value)s" if cond["op"] == ">" else "r.value < %(value)s"
    sql = f"""
    WITH {_LATEST},
    window_rows AS (
        SELECT l.device_id, r.ts, r.value, ({beyond}) AS beyond, l.at
        FROM {_window(">= l.at - make_interval(mins => %(lookback)s)")}),
    runs AS (
        SELECT device_id, at,
               max(ts) FILTER (WHERE NOT beyond) AS last_ok,
               min(ts) AS first_seen
        FROM window_rows GROUP BY device_id, at),
    held AS (
        SELECT device_id, at, last_ok,
               (SELECT min(w.ts) FROM window_rows w
                WHERE w.device_id = runs.device_id AND w.ts > coalesce(runs.last_ok, '-infinity'))
                   AS run_start
        FROM runs WHERE last_ok IS NULL OR last_ok < at)
    SELECT w.device_id, w.ts, %(metric)s, w.value
    FROM held h JOIN window_rows w ON w.device_id = h.device_id AND w.ts >= h.run_start
    WHERE h.at - h.run_start >= make_interval(mins => %(minutes)s)
    ORDER BY w.device_id, w.ts DESC"""  # noqa: S608 (constant SQL fragments only)
    return _fetch(
        sql,
        {
            "devices": devices,
            "metric": cond["metric"],
            "value": cond["value"],
            "minutes": int(cond["minutes"]),
            "lookback": int(cond["minutes"]) + 60,
        },
    )


def _count(cond, devices):
    sql = f"""
    WITH {_LATEST},
    hits AS (
        SELECT l.device_id, r.ts, r.value, count(*) OVER (PARTITION BY l.device_id) AS n
        FROM {_window("> l.at - make_interval(mins => %(minutes)s)")}
        WHERE r.value = %(value)s)
    SELECT device_id, ts, %(metric)s, value FROM hits WHERE n >= %(at_least)s
    ORDER BY device_id, ts DESC"""  # noqa: S608 (constant SQL fragments only)
    return _fetch(
        sql,
        {
            "devices": devices,
            "metric": cond["metric"],
            "value": cond["value"],
            "minutes": int(cond["minutes"]),
            "at_least": cond["at_least"],
        },
    )


def _cumulative(cond, devices):
    sql = f"""
    WITH {_LATEST}
    SELECT l.device_id, r.ts, %(metric)s, r.value
    FROM {_window("= l.at")}
    WHERE r.value >= %(at_least)s"""  # noqa: S608 (constant SQL fragments only)
    return _fetch(sql, {"devices": devices, "metric": cond["metric"], "at_least": cond["at_least"]})


def _rate(cond, devices):
    sql = f"""
    WITH {_LATEST},
    ends AS (
        SELECT l.device_id,
               (array_agg(r.ts ORDER BY r.ts))[1] AS t0,
               (array_agg(r.value ORDER BY r.ts))[1] AS v0,
               (array_agg(r.ts ORDER BY r.ts DESC))[1] AS t1,
               (array_agg(r.value ORDER BY r.ts DESC))[1] AS v1
        FROM {_window(">= l.at - make_interval(mins => %(minutes)s)")}
        GROUP BY l.device_id)
    SELECT device_id, t, %(metric)s, v
    FROM ends, LATERAL (VALUES (t0, v0), (t1, v1)) AS e(t, v)
    WHERE t1 > t0 AND (v1 - v0) / (extract(epoch FROM t1 - t0) / 3600.0) > %(per_hour)s"""  # noqa: S608 (constant SQL fragments only)
    return _fetch(
        sql,
        {
            "devices": devices,
            "metric": cond["metric"],
            "minutes": int(cond["minutes"]),
            "per_hour": cond["per_hour"],
        },
    )


def _no_data(cond, devices, now=None):
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=cond["minutes"])
    sql = """
    SELECT id, NULL::timestamptz, NULL, NULL FROM telemetry_device
    WHERE id = ANY(%(devices)s) AND coalesce(last_seen_at, registered_at) < %(cutoff)s"""
    return _fetch(sql, {"devices": devices, "cutoff": cutoff})


EVALUATORS = {
    "threshold": _threshold,
    "count": _count,
    "cumulative": _cumulative,
    "rate": _rate,
    "no_data": _no_data,
}


def rule_matches(rule: ServiceRule, device_ids: Collection[int]) -> dict[int, Evidence]:
    """{device_id: evidence} for the devices among ``device_ids`` for which the rule holds."""
    result = None
    for cond in rule.conditions:
        held = EVALUATORS[cond["kind"]](cond, list(device_ids))
        if result is None:
            result = held
        elif rule.operator == "and":
            result = {d: result[d] + held[d] for d in result.keys() & held.keys()}
        else:
            result = {d: result.get(d, []) + held.get(d, []) for d in result.keys() | held.keys()}
    return {d: ev[:EVIDENCE_LIMIT] for d, ev in (result or {}).items()}
