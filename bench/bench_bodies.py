"""Reading request bodies (clearinghouse/common/api/bodies.py), in process: no database, no server.

Figures (stdout): the time to read a 10,000-record JSON array and a 50,000-reading JSON array
element by element (the bracket-counting splitter, each element parsed by orjson), the same
records as NDJSON lines, and a body of 100,000 nested brackets — beside, in the same run, one
``orjson.loads`` of the whole body (for NDJSON: of the same records as one array): the floor,
what parsing costs with no streaming and no bounds, holding the whole batch in memory at once.
The ratio says what streaming with bounds costs over that floor.

    .venv/bin/python bench/bench_bodies.py [--repeat 5]
"""

import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.common import log, table


def setup():
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearinghouse.settings.bench")
    import django

    django.setup()


def record(i):
    return {
        "external_id": f"S-{i:06d}",
        "kind": "sale",
        "occurred_at": "2026-11-01T10:00:00+00:00",
        "customer": {"kind": "email", "value": f"anna.schmidt{i}@example.org"},
        "product": {"gtin": "04012345678901", "serial": f"SN{i:06d}"},
        "payload": {"price_cents": 49900, "currency": "EUR", "channel": "store"},
    }


def reading(i):
    return {
        "device": f"DW-{i % 500:06d}",
        "ts": "2026-11-01T10:00:00+00:00",
        "metric": "water_temp_c",
        "value": 41.5 + i % 7,
    }


def best(repeat, run):
    """The median of ``repeat`` timings of ``run()`` (seconds)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    setup()
    from clearinghouse.common.api.bodies import READ_CHUNK, array_elements, element, ndjson_lines

    def split(body):
        reader = io.BytesIO(body)
        first = reader.read(READ_CHUNK)
        return sum(
            1 for e in array_elements(reader, first=first) if type(e) is bytes and element(e)
        )

    def lines(body):
        return sum(1 for n, line in ndjson_lines(io.BytesIO(body)) if element(line, line=n))

    records = orjson.dumps([record(i) for i in range(10_000)])
    readings = orjson.dumps([reading(i) for i in range(50_000)])
    ndjson = b"\n".join(orjson.dumps(record(i)) for i in range(10_000))
    deep = b"[" * 100_000 + b"]" * 100_000
    rows = []
    # The floor of NDJSON is the same records as one JSON array, parsed whole.
    for label, body, streamed, floor_body in [
        ("10,000 records, JSON array", records, split, records),
        ("50,000 readings, JSON array", readings, split, readings),
        ("10,000 records, NDJSON", ndjson, lines, records),
        ("100,000 nested brackets", deep, split, deep),
    ]:
        log(f"{label} ({len(body):,} bytes)")
        ours = best(args.repeat, lambda body=body, streamed=streamed: streamed(body))

        def whole(body=floor_body):
            # orjson refuses nesting past 1,024 levels, at once.
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(body)

        floor = best(args.repeat, whole)
        rows.append((label, f"{ours * 1000:.1f}", f"{floor * 1000:.1f}", f"{ours / floor:.2f}x"))
    print(table(["body", "streamed, bounded (ms)", "orjson whole body (ms)", "ratio"], rows))


if __name__ == "__main__":
    main()
