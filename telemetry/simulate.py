"""Realistic readings for demos and load tests: dishwashers that run a cycle or two a day, a
filter-hours counter, door cycles, a drain pump whose current drifts upward on some devices
(with the error code that goes with it), and a device that falls silent."""

import random
from datetime import timedelta

from django.utils import timezone

STEP = timedelta(minutes=15)


def readings(serials, *, days, seed=7, drifting=None, silent=None, end=None):
    """Yield reading dicts for ``serials`` over ``days`` ending at ``end`` (a 15-minute grid,
    so a re-run over the same window replays duplicates instead of adding rows).

    ``drifting``: serials whose drain-pump current climbs past 1.5 A in the last day;
    ``silent``: serials that stop reporting after the first day."""
    rng = random.Random(seed)
    end = end or timezone.now()
    end = end.replace(minute=end.minute - end.minute % 15, second=0, microsecond=0)
    start = end - timedelta(days=days)
    steps = int((end - start) / STEP)
    drifting = set(drifting or ())
    silent = set(silent or ())
    for serial in serials:
        filter_hours = rng.uniform(50, 400)
        doors = rng.randint(100, 2000)
        cycle_hours = {rng.choice((7, 8, 19, 20)), rng.choice((12, 21))}
        for i in range(steps + 1):
            ts = start + i * STEP
            if serial in silent and ts > start + timedelta(days=1):
                break
            progress = i / max(steps, 1)
            running = ts.hour in cycle_hours
            when = ts.isoformat()
            base = 0.75 + 0.05 * rng.random()
            if serial in drifting:
                base += max(0.0, progress - 0.5) * 2.4  # climbs past 1.5 A in the last day
            current = base + (0.25 if running else 0.0)
            yield {
                "device": serial,
                "ts": when,
                "metric": "drain_pump_current_a",
                "value": round(current, 3),
            }
            yield {
                "device": serial,
                "ts": when,
                "metric": "water_temp_c",
                "value": round((55 + rng.gauss(0, 2)) if running else (21 + rng.gauss(0, 0.5)), 2),
            }
            yield {
                "device": serial,
                "ts": when,
                "metric": "power_w",
                "value": round(1800 + rng.gauss(0, 60) if running else 1.5, 1),
            }
            if running:
                filter_hours += 0.25
                if i % 4 == 0:
                    doors += 1
            if i % 4 == 0:  # hourly counters
                yield {
                    "device": serial,
                    "ts": when,
                    "metric": "filter_hours",
                    "value": round(filter_hours, 2),
                }
                yield {"device": serial, "ts": when, "metric": "door_cycles", "value": doors}
            if serial in drifting and progress > 0.8 and rng.random() < 0.15:
                yield {"device": serial, "ts": when, "metric": "error_code", "value": 24}
            elif rng.random() < 0.002:
                yield {"device": serial, "ts": when, "metric": "error_code", "value": 11}


def post(partner, rows, *, batch=10000, progress=None):
    """Feed rows through the same ingest service the API uses, in batches; returns totals."""
    from django.conf import settings

    from .services import readings_ingest

    size = min(batch, settings.TELEMETRY_MAX_BATCH)
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    chunk = []

    def send():
        summary = readings_ingest(partner=partner, rows=chunk, max_rows=size)
        for key in totals:
            totals[key] += summary[key]
        if progress:
            progress(len(chunk))

    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            send()
            chunk = []
    if chunk:
        send()
    return totals
