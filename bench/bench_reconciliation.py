"""Reconciliation of one manufacturer–retailer pair on generated data.

Data (SQL, generate_series): --units sales by the retailer over as many units; as many warranty
registrations by the manufacturer, 90% on the sold units and 10% on other units; 10% of the
registrations with a purchase date 60 days from the sale; plus units/20 warranty claims, units/20
service requests (most with a completion), units/20 loyalty accruals, returns and reversals.
Every customer consents to both partners for warranty, service and loyalty.

Figures (stdout):
  * the sale↔registration step of a full run ("sale-registration links": the join that matches
    sales with registrations and writes the links) beside one hand-written SQL join of the same
    match (unit, and customer where both records name one) into a result table, in the same run
    (goal <= 1.5x the join). The goal's result table is a logged table keyed like the links:
    the goal's reference figures (the join about 2.7 s, the match in Python about 10.6 s: the
    join a quarter of the Python match) fit that table, and not a temp table (a tenth of it);
    the bench prints both ratios beside the Python match so that the reading can be checked. The
    step is also given against the join into a temp table and into a logged table without a key
    (CREATE TABLE AS), the cheapest result tables, which no durable link store can match;
  * the whole full run over every rule (goal <= 30 s);
  * an incremental run after 10,000 new records (goal <= 1 s);
  * the peak RSS (VmHWM) of the worker process that ran the full run (goal <= 300 MB).

Each reconciliation runs in a child process (this script with --child) that imports Django and
calls ``reconcile_pair`` the way a Celery worker does; it reports per-step and per-statement
times and its own peak memory as JSON. The application code is not changed; the statement
timer wraps ``Run.sql`` (``clearinghouse/reconciliation/engine/run.py``) from outside.

    .venv/bin/python bench/bench_reconciliation.py [--units 1000000] [--customers 200000] [--keep]

It creates and drops its own database (clearinghouse_bench_<pid>) and uses Redis db 12.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PYTHON,
    ROOT,
    bench_database,
    django_setup,
    log,
    setup_partners,
    table,
)

R2M, M2R = "retailer_to_manufacturer", "manufacturer_to_retailer"
CLAUSES = [
    {"kind": "sale", "purpose": "warranty", "direction": R2M, "fields": ["product", "customer", "channel"]},
    {"kind": "return", "purpose": "warranty", "direction": R2M, "fields": ["product", "customer", "sale_reference"]},
    {"kind": "loyalty_accrual", "purpose": "loyalty", "direction": R2M,
     "fields": ["product", "customer", "points", "sale_reference"]},
    {"kind": "service_request", "purpose": "service", "direction": R2M,
     "fields": ["product", "customer", "status", "reference"]},
    {"kind": "warranty_registration", "purpose": "warranty", "direction": M2R,
     "fields": ["product", "customer", "purchase_date", "warranty_months"]},
    {"kind": "warranty_claim", "purpose": "warranty", "direction": M2R, "fields": ["product", "customer", "fault"]},
    {"kind": "service_completion", "purpose": "service", "direction": M2R,
     "fields": ["product", "customer", "reference"]},
]  # fmt: skip
PURPOSES = ("warranty", "service", "loyalty")
STRIDE = 7919  # customer of unit u: 1 + (u * STRIDE) % customers
CHUNK = 250_000
NEW_RECORDS = 10_000
TABLE = "records_interactionrecord"


def gtins():
    from clearinghouse.records.gtin import check_digit

    return [
        (body + check_digit(body)).rjust(14, "0")
        for body in (f"400123456{m:03d}" for m in range(8))
    ]


# --- loading ----------------------------------------------------------------------------------

# {unit} is an SQL expression of the unit number; the sale of unit u happened at SALE_AT(u).
UNIT = "(%(gtins)s::text[])[1 + ({unit}) %% 8], 'SN' || lpad(({unit})::text, 10, '0')"
CUSTOMER = "md5('bench-customer-' || (1 + (({unit})::bigint * {stride}) %% %(customers)s))::uuid"
SALE_AT = "(now() - interval '700 days' + ({unit}) * %(step)s * interval '1 second')"

INSERT = """
    INSERT INTO records_interactionrecord
        (ref, submitted_by_id, external_id, kind, purpose, category, customer_id, gtin, serial,
         occurred_at, payload, content_hash, received_at)
    SELECT gen_random_uuid(), %(partner)s, x.external_id, %(kind)s, %(purpose)s, %(category)s,
           {customer}, {unit_columns}, x.occurred_at, x.payload, md5(x.external_id),
           x.occurred_at + interval '2 hours'
    FROM (SELECT i, {unit} AS u, {external_id} AS external_id, {occurred} AS occurred_at,
                 {payload} AS payload
          FROM generate_series(%(first)s, %(last)s) AS i {where}) x
"""


def statement(*, unit, external_id, occurred, payload, where="", at=None):
    sale = SALE_AT.format(unit=at or unit)
    return INSERT.format(
        customer=CUSTOMER.format(unit="x.u", stride=STRIDE),
        unit_columns=UNIT.format(unit="x.u"),
        unit=unit,
        external_id=external_id,
        occurred=occurred.format(sale=sale),
        payload=payload.format(sale=sale),
        where=where,
    )


def record_sets(units):
    """(label, partner side, kind, purpose, category, SQL, how many i) of every generated set."""
    small = max(1, units // 20)
    n = f"{units}"
    return [
        (
            "sales",
            "shop",
            "sale",
            "warranty",
            "purchase",
            statement(
                unit="i",
                external_id="'S-' || lpad(i::text, 10, '0')",
                occurred="{sale}",
                payload="""jsonb_build_object('price_cents', 1999 + (i * 37) %% 200000, 'currency', 'EUR',
                           'channel', (ARRAY['store', 'online', 'phone'])[1 + i %% 3])""",
            ),
            units,
        ),
        (
            # 90% on sold units (i % 10 <> 9), 10% on units nobody sold (units + i);
            # i % 10 = 3: the purchase date the customer gave is 60 days before the sale.
            "registrations",
            "maker",
            "warranty_registration",
            "warranty",
            "warranty",
            statement(
                unit=f"CASE WHEN i % 10 = 9 THEN {n} + i ELSE i END".replace("%", "%%"),
                at="i",
                external_id="'W-' || lpad(i::text, 10, '0')",
                occurred="({sale} + (i %% 30) * interval '1 day')",
                payload="""jsonb_build_object('warranty_months', (ARRAY[24, 36, 60])[1 + i %% 3],
                           'registered_via', (ARRAY['app', 'web', 'mail', 'store'])[1 + i %% 4],
                           'purchase_date', (({sale} - CASE WHEN i %% 10 = 3 THEN interval '60 days'
                                              ELSE interval '0 days' END) AT TIME ZONE 'UTC')::date::text)""",
            ),
            units,
        ),
        (
            # on units 20k (sold and registered); every 25th repeats the previous unit;
            # every 50th is dated before the sale.
            "claims",
            "maker",
            "warranty_claim",
            "warranty",
            "warranty",
            statement(
                unit="(CASE WHEN i % 25 = 3 THEN i - 1 ELSE i END) * 20".replace("%", "%%"),
                external_id="'C-' || lpad(i::text, 10, '0')",
                occurred="({sale} + CASE WHEN i %% 50 = 1 THEN interval '-5 days' ELSE (i %% 400) * interval '1 day' END)",
                payload="""jsonb_build_object('fault', (ARRAY['pump', 'motor', 'display'])[1 + i %% 3],
                           'status', 'submitted')""",
            ),
            small,
        ),
        (
            # on units 20k + 1; open when i % 10 = 0 or i % 25 = 7 (the latter without completion)
            "service requests",
            "shop",
            "service_request",
            "service",
            "service",
            statement(
                unit="i * 20 + 1",
                external_id="'SR-' || lpad(i::text, 10, '0')",
                occurred="({sale} + (30 + i %% 200) * interval '1 day')",
                payload="""jsonb_build_object('issue', 'noise', 'reference', 'SR-' || i,
                           'status', CASE WHEN i %% 10 = 0 OR i %% 25 = 7 THEN 'open' ELSE 'closed' END)""",
            ),
            small,
        ),
        (
            "service completions",
            "maker",
            "service_completion",
            "service",
            "service",
            statement(
                unit="i * 20 + 1",
                external_id="'SC-' || lpad(i::text, 10, '0')",
                occurred="({sale} + (33 + i %% 200) * interval '1 day')",
                payload="jsonb_build_object('reference', 'SR-' || i, 'resolution', 'fixed')",
                where="WHERE i % 25 <> 7".replace("%", "%%"),
            ),
            small,
        ),
        (
            "loyalty accruals",
            "shop",
            "loyalty_accrual",
            "loyalty",
            "loyalty",
            statement(
                unit="i * 20 + 2",
                external_id="'LA-' || lpad(i::text, 10, '0')",
                occurred="({sale} + interval '1 minute')",
                payload="""jsonb_build_object('points', 100 + i %% 50, 'reason', 'purchase',
                           'sale_reference', 'S-' || lpad((i * 20 + 2)::text, 10, '0'))""",
            ),
            small,
        ),
        (
            # a fifth of the accrued sales were returned; half of those reversed the points
            "returns",
            "shop",
            "return",
            "warranty",
            "purchase",
            statement(
                unit="i * 20 + 2",
                external_id="'RT-' || lpad(i::text, 10, '0')",
                occurred="({sale} + interval '10 days')",
                payload="""jsonb_build_object('reason', 'changed mind',
                           'sale_reference', 'S-' || lpad((i * 20 + 2)::text, 10, '0'))""",
                where="WHERE i % 5 = 0".replace("%", "%%"),
            ),
            small,
        ),
        (
            "loyalty reversals",
            "shop",
            "loyalty_accrual",
            "loyalty",
            "loyalty",
            statement(
                unit="i * 20 + 2",
                external_id="'LR-' || lpad(i::text, 10, '0')",
                occurred="({sale} + interval '11 days')",
                payload="""jsonb_build_object('points', -(100 + i %% 50), 'reason', 'reversal',
                           'sale_reference', 'S-' || lpad((i * 20 + 2)::text, 10, '0'))""",
                where="WHERE i % 10 = 0".replace("%", "%%"),
            ),
            small,
        ),
    ]


def load(cursor, *, shop_id, maker_id, units, customers):
    from consent.catalogue import PURPOSES as CATALOGUE

    started = time.monotonic()
    cursor.execute(
        """INSERT INTO consent_customer (id, created_at)
           SELECT md5('bench-customer-' || n)::uuid, now() - interval '800 days'
           FROM generate_series(1, %s) AS n""",
        [customers],
    )
    log(f"  {customers:,} customers ({time.monotonic() - started:.0f}s)")
    for partner in (maker_id, shop_id):
        for purpose in PURPOSES:
            cursor.execute(
                """INSERT INTO consent_consentgrant
                       (id, customer_id, grantee_id, purpose, categories, policy_version, source,
                        evidence, granted_at, ended_by)
                   SELECT gen_random_uuid(), md5('bench-customer-' || n)::uuid, %s, %s,
                          %s::varchar[], %s, 'customer', '{}'::jsonb, now() - interval '750 days', ''
                   FROM generate_series(1, %s) AS n""",
                [
                    partner,
                    purpose,
                    list(CATALOGUE[purpose].default_categories),
                    CATALOGUE[purpose].current_version,
                    customers,
                ],
            )
    log(f"  consent grants: {6 * customers:,} ({time.monotonic() - started:.0f}s)")
    models = gtins()
    step = 50_000_000 / units  # sales spread over ~580 days, the last ~120 days ago
    loaded = {}
    for label, side, kind, purpose, category, sql, count in record_sets(units):
        total = 0
        for first in range(0, count, CHUNK):
            last = min(count, first + CHUNK) - 1
            cursor.execute(
                sql,
                {
                    "partner": shop_id if side == "shop" else maker_id,
                    "kind": kind,
                    "purpose": purpose,
                    "category": category,
                    "gtins": models,
                    "customers": customers,
                    "step": step,
                    "first": first,
                    "last": last,
                },
            )
            total += cursor.rowcount
            log(f"  {label} {total:,} ({time.monotonic() - started:.0f}s)")
        loaded[label] = total
    for table_name in (TABLE, "consent_customer", "consent_consentgrant"):
        cursor.execute(f"VACUUM (ANALYZE) {table_name}")
    cursor.execute("CHECKPOINT")
    log(f"  VACUUM (ANALYZE) and CHECKPOINT done ({time.monotonic() - started:.0f}s)")
    return loaded, time.monotonic() - started


def add_new_records(cursor, *, shop_id, maker_id, units, customers):
    """NEW_RECORDS/2 sales + NEW_RECORDS/2 registrations on new units, sold a day ago."""
    half = NEW_RECORDS // 2
    models = gtins()
    base = 3 * units  # beyond every unit used so far
    for label, partner, kind, category, prefix, payload in (
        (
            "sales",
            shop_id,
            "sale",
            "purchase",
            "SN-",
            "jsonb_build_object('price_cents', 4999, 'currency', 'EUR', 'channel', 'online')",
        ),
        (
            "registrations",
            maker_id,
            "warranty_registration",
            "warranty",
            "WN-",
            "jsonb_build_object('warranty_months', 24, 'purchase_date', ((now() - interval '1 day') AT TIME ZONE 'UTC')::date::text)",
        ),
    ):
        cursor.execute(
            f"""INSERT INTO {TABLE}
                    (ref, submitted_by_id, external_id, kind, purpose, category, customer_id, gtin,
                     serial, occurred_at, payload, content_hash, received_at)
                SELECT gen_random_uuid(), %(partner)s, %(prefix)s || u, %(kind)s, 'warranty',
                       %(category)s, {CUSTOMER.format(unit="u", stride=STRIDE)},
                       {UNIT.format(unit="u")}, now() - interval '1 day', {payload},
                       md5(%(prefix)s || u), now()
                FROM generate_series(%(first)s, %(last)s) AS u""",
            {
                "partner": partner,
                "prefix": prefix,
                "kind": kind,
                "category": category,
                "gtins": models,
                "customers": customers,
                "first": base,
                "last": base + half - 1,
            },
        )
        log(f"  {cursor.rowcount:,} new {label}")


# --- the child: one reconcile_pair in its own process -----------------------------------------


def _status_mb(*keys):
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in keys:
            out[key] = int(line.split()[1]) / 1024
    return out


def child(args):
    """Run reconcile_pair once and print JSON: total, steps, statements, counts, memory."""
    django_setup()
    from django.db import connection

    from clearinghouse.reconciliation import engine
    from clearinghouse.reconciliation.engine.run import Run
    from partners.models import Partner

    pair = Partner.objects.unscoped("the bench runs the pair it was given")
    maker = pair.get(pk=args.maker)
    shop = pair.get(pk=args.shop)
    statements = []
    original = Run.sql

    def timed_sql(run, query, params=()):
        label = " ".join(query.split())
        upper = label.upper()
        explainable = upper.startswith(("INSERT", "SELECT", "UPDATE")) or (
            upper.startswith("CREATE TEMP TABLE") and " AS SELECT" in upper
        )
        if args.explain and explainable:
            began = time.monotonic()
            run.cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
            plan = "\n".join(row[0] for row in run.cursor.fetchall())
            statements.append((label, time.monotonic() - began, plan))
            return 0
        began = time.monotonic()
        result = original(run, query, params)
        statements.append((label, time.monotonic() - began, ""))
        if time.monotonic() - began > 1:
            log(f"    [{args.child}] {time.monotonic() - began:.1f}s: {label[:100]}")
        return result

    Run.sql = timed_sql
    from django.db.backends import utils as db_utils

    execute = db_utils.CursorWrapper.execute

    def explained_execute(cursor, sql, params=None):
        # the resolve UPDATE goes through the cursor directly: log its plan (EXPLAIN, no ANALYZE)
        if sql.lstrip().startswith("UPDATE reconciliation_discrepancy d"):
            execute(cursor, "EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            log(f"    [{args.child}] plan of the resolve UPDATE:\n{plan}")
        return execute(cursor, sql, params)

    db_utils.CursorWrapper.execute = explained_execute
    marks = []
    before = _status_mb("VmHWM", "VmRSS")
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        work_mem = cursor.fetchone()[0]
    began = time.monotonic()
    run = engine.reconcile_pair(
        manufacturer=maker,
        retailer=shop,
        trigger="manual",
        full=args.child == "full",
        progress=lambda name, done, total: (
            marks.append((name, time.monotonic())),
            log(
                f"    [{args.child}] step {done}/{total} {name} done at {time.monotonic() - began:.1f}s"
            ),
        ),
    )
    total = time.monotonic() - began
    after = _status_mb("VmHWM", "VmRSS")
    steps, previous = [], began
    for name, at in marks:
        steps.append((name, at - previous))
        previous = at
    steps.append(("(after commit: webhooks)", began + total - previous))
    print(
        json.dumps(
            {
                "status": run.status,
                "error": run.error,
                "total": total,
                "steps": steps,
                "statements": statements,
                "counts": run.counts,
                "work_mem": work_mem,
                "hwm_before": before.get("VmHWM"),
                "hwm": after.get("VmHWM"),
                "rss": after.get("VmRSS"),
                "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


def run_child(env, mode, maker, shop, *, explain=False, timeout=None):
    command = [PYTHON, str(Path(__file__).resolve()), "--child", mode]
    command += ["--maker", str(maker.pk), "--shop", str(shop.pk)]
    if explain:
        command.append("--explain")
    began = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True, timeout=timeout
    )
    wall = time.monotonic() - began
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    if result["status"] != "done":
        raise RuntimeError(f"{mode} run: {result['status']} {result['error']}")
    return result


# --- the baseline -----------------------------------------------------------------------------

# The goal's reference figures, measured on a machine like this one: the join into a result
# table, and the same match in Python after fetching both tables (seconds).
REFERENCE_JOIN = 2.7
REFERENCE_PYTHON = 10.6


def baseline_join(cursor, *, shop_id, maker_id, repeats=3, temp=True):
    """For context: one hand-written join of the sale↔registration match into the cheapest
    result table, timed: a temp table, or a logged one without a key (``temp=False``)."""
    from clearinghouse.reconciliation.engine import SALE_REGISTRATION_CUSTOMER

    times, rows = [], 0
    for _ in range(repeats):
        cursor.execute("DROP TABLE IF EXISTS bench_join")
        began = time.monotonic()
        cursor.execute(
            f"""CREATE {"TEMP " if temp else ""}TABLE bench_join AS
                SELECT s.id AS sale_id, g.id AS registration_id
                FROM {TABLE} s JOIN {TABLE} g USING (gtin, serial)
                WHERE s.kind = 'sale' AND g.kind = 'warranty_registration'
                  AND s.submitted_by_id = %s AND g.submitted_by_id = %s
                  AND {SALE_REGISTRATION_CUSTOMER}""",
            [shop_id, maker_id],
        )
        times.append(time.monotonic() - began)
        rows = cursor.rowcount
    cursor.execute("DROP TABLE IF EXISTS bench_join")
    return times, rows


def baseline_python(cursor, *, shop_id, maker_id):
    """For context: the same match done in Python after fetching both tables (a dict of the
    sales by unit, probed with each registration)."""
    began = time.monotonic()
    cursor.execute(
        f"""SELECT id, gtin, serial, customer_id FROM {TABLE}
            WHERE kind = 'sale' AND submitted_by_id = %s""",
        [shop_id],
    )
    sales = {}
    for sale_id, gtin, serial, customer in cursor.fetchall():
        sales.setdefault((gtin, serial), []).append((sale_id, customer))
    cursor.execute(
        f"""SELECT id, gtin, serial, customer_id FROM {TABLE}
            WHERE kind = 'warranty_registration' AND submitted_by_id = %s""",
        [maker_id],
    )
    pairs = [
        (sale_id, registration_id)
        for registration_id, gtin, serial, customer in cursor.fetchall()
        for sale_id, sold_to in sales.get((gtin, serial), ())
        if sold_to is None or customer is None or sold_to == customer
    ]
    return time.monotonic() - began, len(pairs)


def baseline_join_stored(cursor, *, shop_id, maker_id, repeats=3):
    """The goal's baseline: the same join written the way links are stored, into a logged table
    keyed like the links table (its primary key), in key order. The difference to
    ``baseline_join`` is what durability and the key cost."""
    from clearinghouse.reconciliation.engine import SALE_REGISTRATION_CUSTOMER

    times = []
    for _ in range(repeats):
        cursor.execute("DROP TABLE IF EXISTS bench_links")
        cursor.execute(
            """CREATE TABLE bench_links (from_id bigint, to_id bigint, kind text,
                   created_at timestamptz, PRIMARY KEY (from_id, to_id, kind))"""
        )
        began = time.monotonic()
        cursor.execute(
            f"""INSERT INTO bench_links
                SELECT s.id, g.id, 'sale_registration', now()
                FROM {TABLE} s JOIN {TABLE} g USING (gtin, serial)
                WHERE s.kind = 'sale' AND g.kind = 'warranty_registration'
                  AND s.submitted_by_id = %s AND g.submitted_by_id = %s
                  AND {SALE_REGISTRATION_CUSTOMER}
                ORDER BY s.id, g.id""",
            [shop_id, maker_id],
        )
        times.append(time.monotonic() - began)
    cursor.execute("DROP TABLE IF EXISTS bench_links")
    return times


# --- the report -------------------------------------------------------------------------------


def step_rows(result):
    return [[name, f"{seconds:.2f}"] for name, seconds in result["steps"]] + [
        ["total (reconcile_pair)", f"{result['total']:.2f}"]
    ]


def top_statements(result, n=6):
    ordered = sorted(result["statements"], key=lambda s: -s[1])[:n]
    return [[f"{label[:110]}", f"{seconds:.2f}"] for label, seconds, _ in ordered]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--units", type=int, default=1_000_000, help="sales (and registrations)")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--no-explain", action="store_true", help="skip the profiling run")
    parser.add_argument(
        "--profile", action="store_true", help="profile even when the full run meets its goal"
    )
    parser.add_argument(
        "--full-timeout", type=int, default=0, help="stop the full run after this many seconds"
    )
    parser.add_argument("--child", choices=("full", "incremental"), help=argparse.SUPPRESS)
    parser.add_argument("--maker", help=argparse.SUPPRESS)
    parser.add_argument("--shop", help=argparse.SUPPRESS)
    parser.add_argument("--explain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    wall = time.monotonic()
    with bench_database(keep=args.keep) as (env, _url, _redis):
        django_setup()
        from django.db import connection

        from partners.agreements.services import agreement_countersign, agreement_propose

        maker, _mk, shop, _sk, maker_admin, shop_admin = setup_partners()
        version = agreement_propose(
            proposer=shop, counterpart=maker, actor=shop_admin, clauses=CLAUSES
        )
        agreement_countersign(version=version, partner=maker, actor=maker_admin)
        log("partners and an active agreement set up")

        log(f"loading {args.units:,} sales + {args.units:,} registrations and the rest")
        with connection.cursor() as cursor:
            loaded, load_seconds = load(
                cursor,
                shop_id=shop.pk,
                maker_id=maker.pk,
                units=args.units,
                customers=args.customers,
            )
            cursor.execute(
                f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{TABLE}')) FROM {TABLE}"
            )
            record_count, size = cursor.fetchone()

            log("baseline: the hand-written join into a logged table keyed like the links, 3 times")
            stored_times = baseline_join_stored(cursor, shop_id=shop.pk, maker_id=maker.pk)
            log("context: the same join into a temp table, 3 times")
            join_times, join_rows = baseline_join(cursor, shop_id=shop.pk, maker_id=maker.pk)
            log("context: the same join into a logged table (CREATE TABLE AS), 3 times")
            logged_times, _ = baseline_join(cursor, shop_id=shop.pk, maker_id=maker.pk, temp=False)
            log("context: the same match in Python after fetching both tables")
            python_seconds, python_rows = baseline_python(
                cursor, shop_id=shop.pk, maker_id=maker.pk
            )
            cursor.execute(
                "SELECT pg_current_wal_lsn(), current_setting('shared_buffers'), "
                "current_setting('max_wal_size')"
            )
            wal_before, shared_buffers, max_wal_size = cursor.fetchone()
        log(f"  join into a keyed table: {', '.join(f'{t:.2f}s' for t in stored_times)}")
        log(
            f"  join into a temp table: {', '.join(f'{t:.2f}s' for t in join_times)} ({join_rows:,} rows)"
        )
        log(f"  join into a logged table: {', '.join(f'{t:.2f}s' for t in logged_times)}")
        log(f"  match in Python: {python_seconds:.2f}s ({python_rows:,} pairs)")
        connection.close()

        log("full run (child process)")
        try:
            full = run_child(env, "full", maker, shop, timeout=args.full_timeout or None)
        except subprocess.TimeoutExpired:
            log(f"full run did not finish within {args.full_timeout}s: stopped")
            print(
                f"\n{record_count:,} records ({', '.join(f'{k} {v:,}' for k, v in loaded.items())}), "
                f"{args.customers:,} customers; table + indexes {size}; loaded in {load_seconds:.0f}s"
            )
            print(
                f"baseline join into a keyed table: {', '.join(f'{t:.2f}s' for t in stored_times)}"
                f" ({join_rows:,} rows)"
            )
            print(
                f"full run: did not finish within {args.full_timeout}s (stopped); per-step times "
                "and the slow statements are on stderr"
            )
            print(f"total time {time.monotonic() - wall:.0f}s")
            return 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [wal_before])
            full_wal_mb = cursor.fetchone()[0] / 2**20
        log(
            f"  full run: {full['total']:.1f}s, counts {full['counts']}, VmHWM {full['hwm']:.0f} MB, "
            f"WAL {full_wal_mb:.0f} MB"
        )
        log("\n" + table(["step", "s"], step_rows(full)))
        log("\n" + table(["statement", "s"], top_statements(full)))

        with connection.cursor() as cursor:
            log(f"adding {NEW_RECORDS:,} new records")
            add_new_records(
                cursor,
                shop_id=shop.pk,
                maker_id=maker.pk,
                units=args.units,
                customers=args.customers,
            )
        connection.close()
        log("incremental run (child process)")
        incremental = run_child(env, "incremental", maker, shop)
        log(f"  incremental run: {incremental['total']:.2f}s, counts {incremental['counts']}")
        log("\n" + table(["step", "s"], step_rows(incremental)))
        log("\n" + table(["statement", "s"], top_statements(incremental)))

        profile = None
        if not args.no_explain and (args.profile or full["total"] > 30):
            log("profiling: a second full run with EXPLAIN (ANALYZE, BUFFERS) of each statement")
            profile = run_child(env, "full", maker, shop, explain=True)
            log(f"  profiled run: {profile['total']:.1f}s")
        children_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    join = statistics.median(join_times)
    stored = statistics.median(stored_times)
    logged = statistics.median(logged_times)
    steps = dict(full["steps"])
    links = steps["sale-registration links"]
    link_statement = next(s[1] for s in full["statements"] if "'sale_registration'" in s[0])
    hwm = full["hwm"]

    print()
    print(
        f"Reconciliation of one pair, {time.strftime('%Y-%m-%d %H:%M')}: {record_count:,} records "
        f"({', '.join(f'{k} {v:,}' for k, v in loaded.items())}), {args.customers:,} customers "
        f"all consenting to both partners for {', '.join(PURPOSES)}; table + indexes {size}; "
        f"loaded in {load_seconds:.0f}s; PostgreSQL work_mem {full['work_mem']}, shared_buffers "
        f"{shared_buffers}, max_wal_size {max_wal_size}"
    )
    print(
        f"baseline join (sales x registrations on gtin, serial and customer, into a logged table "
        f"keyed like the links, in key order): {', '.join(f'{t:.2f}s' for t in stored_times)} "
        f"-> median {stored:.2f}s, {join_rows:,} rows"
    )
    print(
        f"for context, the same join into a temp table: "
        f"{', '.join(f'{t:.2f}s' for t in join_times)} -> median {join:.2f}s; into a logged "
        f"table without a key (CREATE TABLE AS): {', '.join(f'{t:.2f}s' for t in logged_times)} "
        f"-> median {logged:.2f}s; the same match in Python after fetching both tables: "
        f"{python_seconds:.2f}s ({python_rows:,} pairs)"
    )
    print(
        f"which result table the goal means: its reference figures put the join at "
        f"{REFERENCE_JOIN / REFERENCE_PYTHON:.2f} of the Python match ({REFERENCE_JOIN} s / "
        f"{REFERENCE_PYTHON} s); here the keyed table is {stored / python_seconds:.2f} of it, "
        f"the temp table {join / python_seconds:.2f}, the logged table without a key "
        f"{logged / python_seconds:.2f}"
    )
    print()
    print("full run, per step (seconds):")
    print(table(["step", "s"], step_rows(full)))
    print(f"counts: {full['counts']}; WAL written by the run: {full_wal_mb:.0f} MB")
    print()
    print("full run, slowest statements (seconds):")
    print(table(["statement", "s"], top_statements(full)))
    print()
    print("incremental run after 10,000 new records, per step (seconds):")
    print(table(["step", "s"], step_rows(incremental)))
    print(f"counts: {incremental['counts']}")
    print()
    print(
        f"worker memory (child process running the full run): VmHWM {hwm:.0f} MB "
        f"(after Django setup, before the run: {full['hwm_before']:.0f} MB); incremental run "
        f"VmHWM {incremental['hwm']:.0f} MB; max ru_maxrss of all children {children_maxrss:.0f} MB"
    )
    print()
    print(
        table(
            ["figure", "value", "goal", "met"],
            [
                [
                    "sale-registration links step / baseline join",
                    f"{links / stored:.2f}x ({links:.2f}s / {stored:.2f}s)",
                    "<= 1.5x",
                    "yes" if links <= 1.5 * stored else "NO",
                ],
                [
                    "  its sale_registration INSERT / baseline join",
                    f"{link_statement / stored:.2f}x ({link_statement:.2f}s)",
                    "",
                    "",
                ],
                [
                    "  the step / join into a temp table",
                    f"{links / join:.2f}x ({join:.2f}s)",
                    "",
                    "",
                ],
                [
                    "  the step / join into a logged table, no key",
                    f"{links / logged:.2f}x ({logged:.2f}s)",
                    "",
                    "",
                ],
                [
                    "  'sales and registrations' step",
                    f"{steps['sales and registrations']:.2f}s",
                    "",
                    "",
                ],
                [
                    "full run, every rule",
                    f"{full['total']:.1f}s",
                    "<= 30 s",
                    "yes" if full["total"] <= 30 else "NO",
                ],
                [
                    "incremental run (10,000 new)",
                    f"{incremental['total']:.2f}s",
                    "<= 1 s",
                    "yes" if incremental["total"] <= 1 else "NO",
                ],
                [
                    "peak worker memory (VmHWM)",
                    f"{hwm:.0f} MB",
                    "<= 300 MB",
                    "yes" if hwm <= 300 else "NO",
                ],
            ],
        )
    )
    if profile:
        print()
        print(
            f"profile: a second full run (links and discrepancies already exist) with EXPLAIN "
            f"(ANALYZE, BUFFERS) of each statement took {profile['total']:.1f}s; slowest:"
        )
        print(table(["statement", "s"], top_statements(profile)))
        for label, seconds, plan in sorted(profile["statements"], key=lambda s: -s[1])[:2]:
            print(f"\n-- {seconds:.2f}s: {label[:300]}\n{plan}")
    print(f"\ntotal time {time.monotonic() - wall:.0f}s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
