"""Readings ingest over HTTP (gunicorn on loopback, 50,000-reading NDJSON batches) beside a raw
psycopg COPY into the same partitioned table and a naive DRF endpoint; peak worker memory; and
the latency from a batch's commit to the service signal its readings trip (Celery worker).

Run as ``python bench/bench_telemetry.py``: progress on stderr, figures on stdout. Creates its
own database (dropped at the end) and uses its own Redis database.
"""

import contextlib
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.bench_ingest import gtin13, memory_line, run_batches
from bench.common import (
    ROOT,
    VENV_BIN,
    Gunicorn,
    OtherWork,
    arguments,
    bench_database,
    django_setup,
    log,
    percentile,
    table,
)

BATCH = 50_000
METRICS = (
    "drain_pump_current_a",
    "water_temp_c",
    "filter_hours",
    "error_code",
    "door_cycles",
    "power_w",
)
MODEL = "WM-900"
TRIP_MODEL = "WM-TRIP"


def value_for(metric, device, step):
    """A plausible value of ``metric`` for device number ``device`` at minute ``step``."""
    wobble = ((device * 7919 + step * 104729) % 1000) / 1000
    if metric == "drain_pump_current_a":
        return round(0.4 + 0.3 * wobble, 3)
    if metric == "water_temp_c":
        return round(20 + 40 * wobble, 2)
    if metric == "filter_hours":
        return round(device % 500 + step / 60, 3)
    if metric == "error_code":
        return 0 if wobble < 0.98 else 17
    if metric == "door_cycles":
        return device % 3000 + step // 90
    return round(5 + 2000 * wobble * wobble, 1)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def readings(serials, base, first, count):
    """``count`` readings: row i is device (i // 6) % n, metric i % 6, minute i // (6 n)."""
    n = len(serials)
    per_minute = 6 * n
    out = []
    for i in range(first, first + count):
        step, rest = divmod(i, per_minute)
        device, m = divmod(rest, 6)
        metric = METRICS[m]
        out.append((device, serials[device], metric, base + timedelta(minutes=step), step))
    return [
        {"device": s, "ts": iso(ts), "metric": metric, "value": value_for(metric, d, step)}
        for d, s, metric, ts, step in out
    ]


def ndjson(rows):
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def check_readings(status, data, rows):
    if status != 200:
        return {"ok": False, "note": f"HTTP {status}: {data[:300]!r}"}
    body = orjson.loads(data)
    ok = body.get("accepted") == rows and not body.get("rejected")
    note = f"accepted={body.get('accepted')} duplicates={body.get('duplicates')} rejected={body.get('rejected')}"
    if body.get("errors"):
        note += f" first errors: {body['errors'][:3]}"
    return {"ok": ok, "note": "" if ok else "UNEXPECTED " + note}


def check_naive(status, data, rows):
    if status != 200:
        return {"ok": False, "note": f"HTTP {status}: {data[:300]!r}"}
    body = orjson.loads(data)
    return {"ok": body.get("created") == rows, "note": f"created={body.get('created')}"}


def setup_maker():
    from partners import services
    from partners.models import Partner, User

    operator = User.objects.create_superuser("operator@bench.example", "bench-operator-pass-123")
    partner, admin = services.partner_register(
        name="Bench Appliances",
        kind=Partner.Kind.MANUFACTURER,
        contact_email="contact@appliances.example",
        admin_email="admin@appliances.example",
        admin_password="bench-admin-pass-123",
    )
    partner = services.partner_approve(partner=partner, actor=operator)
    issued = services.credential_create(
        partner=partner,
        name="bench",
        scopes=["telemetry:write", "telemetry:read"],
        created_by=admin,
    )
    return partner, issued.key


def register(partner, prefix, count, model_name):
    from telemetry.services import devices_register

    rows = [
        {
            "serial": f"{prefix}-{i:06d}",
            "gtin": gtin13(f"400000{i % 1000:06d}"),
            "model_name": model_name,
            "firmware": "1.4.2",
        }
        for i in range(count)
    ]
    devices = devices_register(partner=partner, rows=rows)
    return [d.serial for d in devices], [d.pk for d in devices]


def raw_copy(database_url, device_ids, base, total):
    """COPY ``total`` fresh rows (their own minutes) straight into telemetry_reading."""
    import psycopg

    n = len(device_ids)
    per_minute = 6 * n
    rows = []
    for i in range(total):
        step, rest = divmod(i, per_minute)
        device, m = divmod(rest, 6)
        metric = METRICS[m]
        rows.append(
            (
                device_ids[device],
                metric,
                base + timedelta(minutes=step),
                float(value_for(metric, device, step)),
            )
        )
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        for k in range(0, total, BATCH):
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY telemetry_reading (device_id, metric, ts, value) FROM STDIN"
                ) as copy,
            ):
                for row in rows[k : k + BATCH]:
                    copy.write_row(row)
            conn.commit()
        return time.perf_counter() - started


class Celery:
    def __init__(self, env):
        self.env, self.proc = env, None

    def __enter__(self):
        command = [
            str(VENV_BIN / "celery"),
            "-A",
            "clearinghouse",
            "worker",
            "--purge",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        log("starting one celery worker (concurrency 2, queue purged)")
        self.log = open("/tmp/bench-telemetry-celery.log", "ab")
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        time.sleep(6)
        if self.proc.poll() is not None:
            raise RuntimeError("celery worker exited; see /tmp/bench-telemetry-celery.log")
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def signal_phase(server, key, serials, trip_serials, trip_ids, base_minute, database_url):
    """Each job: a 50,000-reading batch of which one trip device's water temperature reads
    > 80 °C for 10 minutes. Time from the POST's answer to its ServiceSignal row."""
    import psycopg

    gap = -(-BATCH // (6 * len(serials))) + 15  # minutes between trip batches: no overlap
    jobs = []
    for k, serial in enumerate(trip_serials):
        start = base_minute + timedelta(minutes=gap * k)
        trip = [
            {
                "device": serial,
                "ts": iso(start + timedelta(minutes=j)),
                "metric": "water_temp_c",
                "value": 91.5,
            }
            for j in range(11)
        ]
        filler = readings(serials, start, 0, BATCH - len(trip))
        jobs.append((f"trip {k + 1:02d}", key, ndjson(trip + filler), BATCH))
    label_to_id = {f"trip {k + 1:02d}": trip_ids[k] for k in range(len(trip_ids))}

    found, done = {}, threading.Event()

    def poll():
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not done.is_set() or len(found) < len(trip_ids):
                rows = conn.execute(
                    "SELECT device_id FROM telemetry_servicesignal WHERE device_id = ANY(%s)",
                    [trip_ids],
                ).fetchall()
                now = time.perf_counter()
                for (device_id,) in rows:
                    found.setdefault(device_id, now)
                if done.is_set() and time.perf_counter() - done.at > 60:
                    break
                time.sleep(0.02)

    # Stamp each answer's arrival per batch: wrap Client.request (the job's body identifies it).
    stamps = {}
    body_label = {id(j[2]): j[0] for j in jobs}

    import bench.bench_ingest as ingest_module

    original = ingest_module.Client.request

    def request(self, method, path, body=None, headers=None, key=None):
        status, data, seconds = original(self, method, path, body, headers, key)
        if status == 200 and id(body) in body_label:
            stamps[body_label[id(body)]] = time.perf_counter()
        return status, data, seconds

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    ingest_module.Client.request = request
    try:
        seconds, results = run_batches(
            server.port,
            jobs,
            path="/api/v1/telemetry/readings",
            content_type="application/x-ndjson",
            threads=2,
            check=check_readings,
        )
    finally:
        ingest_module.Client.request = original
    done.at = time.perf_counter()
    done.set()
    poller.join(timeout=75)
    latencies, missing = [], []
    for label, device_id in label_to_id.items():
        if label in stamps and device_id in found:
            latencies.append(found[device_id] - stamps[label])
        else:
            missing.append(label)
    return latencies, missing, results, seconds


def main():
    args = arguments(
        __doc__.splitlines()[0],
        readings=(int, 1_000_000, "readings in the main run (multiple of 50,000)"),
        devices=(int, 1_000, "registered devices"),
        naive_readings=(int, 50_000, "readings sent to the naive endpoint (batches of 10,000)"),
        trips=(int, 20, "signal-latency trips (0 skips the phase)"),
        client_threads=(int, 2, "client threads"),
    )
    wall = time.perf_counter()
    with bench_database(keep=args.keep) as (env, url, _redis):
        django_setup()
        from django.db import connection

        from telemetry.partitions import ensure_partitions, month_start
        from telemetry.services import rule_create

        maker, key = setup_maker()
        serials, device_ids = register(maker, "WM", args.devices, MODEL)
        trip_serials, trip_ids = register(maker, "TRIP", args.trips, TRIP_MODEL)
        log(f"manufacturer + key; {len(serials):,} devices (+{len(trip_serials)} trip devices)")
        if args.trips:
            rule_create(
                partner=maker,
                model_name=TRIP_MODEL,
                name="Overheating",
                issue="Water heater overheats",
                conditions=[
                    {
                        "kind": "threshold",
                        "metric": "water_temp_c",
                        "op": ">",
                        "value": 80,
                        "minutes": 5,
                    }
                ],
            )

        now = datetime.now(UTC).replace(second=0, microsecond=0)
        per_minute = 6 * len(serials)
        minutes_main = -(-args.readings // per_minute)
        # Minute lines that never overlap: main run, naive, COPY, warm-up, signal phase.
        main_base = now - timedelta(days=200)
        naive_base = now - timedelta(days=150)
        copy_base = now - timedelta(days=120)
        warm_base = now - timedelta(days=100)
        trip_base = now - timedelta(days=60)
        months = set()
        for b, mins in (
            (main_base, minutes_main),
            (naive_base, 60),
            (copy_base, minutes_main),
            (warm_base, 5),
            (trip_base, (-(-BATCH // per_minute) + 15) * (args.trips + 1)),
        ):
            t = b
            while t <= b + timedelta(minutes=mins):
                months.add(month_start(t))
                t += timedelta(days=1)
        ensure_partitions(months)
        connection.close()

        log(f"generating {args.readings:,} readings")
        jobs = []
        for k in range(0, args.readings, BATCH):
            rows = readings(serials, main_base, k, BATCH)
            jobs.append((f"batch {k // BATCH + 1:02d}", key, ndjson(rows), BATCH))
        body_mb = sum(len(j[2]) for j in jobs) / 1e6
        log(f"{len(jobs)} NDJSON batches, {body_mb:.1f} MB")
        naive_jobs = []
        for k in range(0, args.naive_readings, 10_000):
            rows = readings(serials, naive_base, k, 10_000)
            naive_jobs.append((f"naive {k // 10_000 + 1}", key, orjson.dumps(rows), 10_000))
        warm_jobs = [("warm-up", key, ndjson(readings(serials, warm_base, 0, 2_000)), 2_000)]
        warm_naive = [
            ("warm-up naive", key, orjson.dumps(readings(serials, warm_base, 2_000, 200)), 200)
        ]

        server = Gunicorn(env, workers=args.workers, threads=args.threads)
        with server:
            log("warm-up")
            run_batches(
                server.port,
                warm_jobs,
                path="/api/v1/telemetry/readings",
                content_type="application/x-ndjson",
                threads=1,
                check=check_readings,
            )
            run_batches(
                server.port,
                warm_naive,
                path="/api/bench/naive-readings",
                content_type="application/json",
                threads=1,
                check=check_naive,
            )
            base_mem = server.memory()
            log(f"workers after warm-up: {memory_line(server)}")
            peaks_reset = server.reset_peaks()

            threads = args.client_threads
            log(f"main run: {len(jobs)} batches of {BATCH:,} over {threads} client thread(s)")
            watch = OtherWork(server).start()
            seconds, results = run_batches(
                server.port,
                jobs,
                path="/api/v1/telemetry/readings",
                content_type="application/x-ndjson",
                threads=threads,
                check=check_readings,
            )
            other_main = watch.stop()
            fast_mem = server.memory()
            log(f"workers after main run: {memory_line(server)}")

            log(f"replay of {jobs[0][0]} (every reading a duplicate)")
            replay_seconds, replay = run_batches(
                server.port,
                [jobs[0]],
                path="/api/v1/telemetry/readings",
                content_type="application/x-ndjson",
                threads=1,
                check=lambda s, d, r: {
                    "ok": s == 200 and orjson.loads(d)["duplicates"] == r,
                    "note": d[:120].decode(errors="replace"),
                },
            )

            log(f"raw COPY of {args.readings:,} fresh rows into telemetry_reading")
            copy_seconds = raw_copy(url, device_ids, copy_base, args.readings)
            log(f"raw COPY: {copy_seconds:.1f}s")

            server.reset_peaks()
            log(f"naive endpoint: {len(naive_jobs)} JSON arrays of 10,000 over {threads} thread(s)")
            watch = OtherWork(server).start()
            naive_seconds, naive = run_batches(
                server.port,
                naive_jobs,
                path="/api/bench/naive-readings",
                content_type="application/json",
                threads=threads,
                check=check_naive,
            )
            other_naive = watch.stop()
            naive_mem = server.memory()

            latencies, missing, trip_results, trip_seconds = [], [], [], 0.0
            if args.trips:
                try:
                    with Celery(env):
                        latencies, missing, trip_results, trip_seconds = signal_phase(
                            server, key, serials, trip_serials, trip_ids, trip_base, url
                        )
                except Exception as exc:
                    log(f"signal phase failed: {exc!r}")
                    missing = ["(phase failed)"]

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM telemetry_reading")
            (stored,) = cursor.fetchone()
        connection.close()

    ok_rows = sum(o.rows for o in results if o.ok)
    rate = ok_rows / seconds
    lat = [sec for o in results for status, sec in o.attempts if status == 200]
    failures = [o for o in results if not o.ok]
    fast_peak = max(h for _, h in fast_mem.values())
    base_rss = max(r for r, _ in base_mem.values())
    copy_rate = args.readings / copy_seconds
    naive_rows = sum(o.rows for o in naive if o.ok)
    naive_rate = naive_rows / naive_seconds if naive_rows else float("nan")
    naive_peak = max(h for _, h in naive_mem.values())
    vs_copy = rate / copy_rate
    vs_naive = rate / naive_rate if naive_rows else float("nan")
    replay_rate = BATCH / replay_seconds
    trip_rate = sum(o.rows for o in trip_results if o.ok) / trip_seconds if trip_seconds else 0
    p50 = percentile(latencies, 50)
    p95 = percentile(latencies, 95)

    print()
    print(
        f"Readings ingest over HTTP (gunicorn {args.workers} workers, loopback, "
        f"{args.client_threads} client threads), {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"main run: {args.readings:,} readings ({len(serials):,} devices x 6 metrics) in "
        f"{len(jobs)} NDJSON batches of {BATCH:,} ({body_mb:.0f} MB): {seconds:.1f}s"
    )
    print(f"  readings/s: {rate:,.0f}  (goal >= 100,000)")
    print(
        f"  batch latency: p50 {percentile(lat, 50):.2f}s, p99 {percentile(lat, 99):.2f}s, "
        f"max {max(lat):.2f}s"
    )
    print(
        f"  peak worker RSS (VmHWM): {fast_peak:.0f} MB (goal <= 200 MB; {base_rss:.0f} MB "
        f"after warm-up{'' if peaks_reset else ', peak NOT reset'})"
    )
    print(
        f"  batches not accepted: {len(failures)}"
        + "".join(f"\n    {o.label}: {o.note[:200]}" for o in failures)
    )
    print(
        f"replay of one batch (50,000 duplicates): {replay_rate:,.0f} readings/s "
        f"({replay_seconds:.2f}s, ok={all(o.ok for o in replay)})"
    )
    print(
        f"raw psycopg COPY (write_row, 50,000-row commits) of {args.readings:,} fresh rows into "
        f"telemetry_reading: {copy_seconds:.1f}s = {copy_rate:,.0f} rows/s"
    )
    print(f"  HTTP / raw COPY: {vs_copy:.0%}  (goal >= 50%)")
    print(
        f"naive endpoint (ModelSerializer(many=True) on Reading, SlugRelatedField device per "
        f"row, bulk_create(ignore_conflicts)): {naive_rows:,} readings in {naive_seconds:.1f}s "
        f"= {naive_rate:,.0f}/s; peak RSS {naive_peak:.0f} MB"
        + "".join(f"\n    {o.label}: {o.note[:200]}" for o in naive if not o.ok)
    )
    print(f"  HTTP / naive: {vs_naive:.1f}x  (goal >= 5x)")
    if args.trips:
        print(
            f"signal latency (POST answer -> ServiceSignal row; 1 celery worker, concurrency 2, "
            f"{len(trip_results)} batches of 50,000 at {trip_rate:,.0f} readings/s): "
            f"{len(latencies)} trips, p50 {p50:.2f}s, p95 {p95:.2f}s, "
            f"max {max(latencies) if latencies else float('nan'):.2f}s; missing {missing}"
        )
    print(f"rows in telemetry_reading at the end: {stored:,}")
    print()
    print(
        table(
            ["figure", "value", "goal", "met"],
            [
                [
                    "ingest readings/s",
                    f"{rate:,.0f}",
                    ">= 100,000",
                    "yes" if rate >= 100_000 else "NO",
                ],
                [
                    "batch p50 / p99 (s)",
                    f"{percentile(lat, 50):.2f} / {percentile(lat, 99):.2f}",
                    "",
                    "",
                ],
                ["raw COPY rows/s", f"{copy_rate:,.0f}", "", ""],
                ["HTTP / raw COPY", f"{vs_copy:.0%}", ">= 50%", "yes" if vs_copy >= 0.5 else "NO"],
                ["naive readings/s", f"{naive_rate:,.0f}", "", ""],
                ["HTTP / naive", f"{vs_naive:.1f}x", ">= 5x", "yes" if vs_naive >= 5 else "NO"],
                [
                    "peak worker RSS (MB)",
                    f"{fast_peak:.0f}",
                    "<= 200",
                    "yes" if fast_peak <= 200 else "NO",
                ],
                [
                    "signal latency p95 (s)",
                    f"{p95:.2f}" if latencies else "n/a",
                    "<= 2",
                    ("yes" if latencies and p95 <= 2 and not missing else "NO")
                    if args.trips
                    else "skipped",
                ],
            ],
        )
    )
    print(
        f"\ntotal time {time.perf_counter() - wall:.0f}s. Other processes used {other_main:.0%} "
        f"of the CPU during the main run, {other_naive:.0%} during the naive run."
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
