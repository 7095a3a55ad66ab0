"""Reconciliation of one manufacturer–retailer pair, set-based in PostgreSQL and incremental.

A run works only on what the two parties may see of each other's records — the records of each
party that the one visibility decision (``visible_records``) lets the other see — so that no
discrepancy reveals a record its counterpart may not see. Findings that concern the manufacturer
alone (a registration or a claim with no sale from any retailer) use the manufacturer's own
records and go to its queue only.

Incremental: a run looks at the records that arrived since the pair's watermark (with an overlap,
because record ids are assigned before their transactions commit) and re-evaluates every rule on
the units and customers those records touch, plus the units whose time-based deadlines passed
since the last run. A full run (nightly, or on demand) re-evaluates everything.

Crash-safe: all of a run's writes happen in one transaction, links and discrepancies are upserted
on unique keys, and a second run waits for nothing (a busy pair is skipped). A worker killed in
the middle of a run leaves nothing behind but a run row marked abandoned by the next run.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from clearinghouse.records.visibility import visible_records

from .models import PairState, ReconciliationRun

RECORD_OVERLAP = 5000
TABLE = "records_interactionrecord"
REC_COLUMNS = (
    "id",
    "kind",
    "gtin",
    "serial",
    "customer_id",
    "occurred_at",
    "payload",
    "external_id",
)

SEVERITY = {
    "registration_date_mismatch": "low",
    "sale_without_registration": "low",
    "registration_without_sale": "low",
    "claim_without_sale": "high",
    "claim_before_sale": "high",
    "claim_outside_warranty": "medium",
    "repeated_claims": "medium",
    "service_status_conflict": "medium",
    "service_overdue": "medium",
    "accrual_not_reversed": "medium",
    "double_credit": "high",
    "redemption_exceeds_balance": "high",
}
DESCRIPTIONS = {
    "registration_date_mismatch": "The registration's purchase date and the sale date are too far apart.",
    "sale_without_registration": "A sold unit was not registered for warranty in time.",
    "registration_without_sale": "A registered unit has no sale from any retailer.",
    "claim_without_sale": "A warranty claim for a unit that no retailer sold.",
    "claim_before_sale": "A warranty claim dated before the unit's sale.",
    "claim_outside_warranty": "A warranty claim after the warranty period ended.",
    "repeated_claims": "Several warranty claims on one unit.",
    "service_status_conflict": "A service case is completed on one side and still open on the other.",
    "service_overdue": "A service request is open past the agreed time with no visit.",
    "accrual_not_reversed": "Points were credited for a sale that was returned, and not reversed.",
    "double_credit": "Both programmes credited points for the same purchase.",
    "redemption_exceeds_balance": "Points were redeemed beyond the balance.",
}


def _lock_key(manufacturer_id, retailer_id):
    return f"recon:{manufacturer_id}:{retailer_id}"


def reconcile_pair(*, manufacturer, retailer, trigger="manual", full=False, progress=None):
    """Run reconciliation for one pair and return its ``ReconciliationRun``. If another run of
    the pair is busy, returns a run marked skipped (the busy run, or the next one, will see the
    same records)."""
    run = ReconciliationRun.objects.create(
        manufacturer=manufacturer, retailer=retailer, trigger=trigger
    )
    ReconciliationRun.objects.filter(
        manufacturer=manufacturer,
        retailer=retailer,
        status=ReconciliationRun.Status.RUNNING,
        started_at__lt=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT),
    ).exclude(pk=run.pk).update(status=ReconciliationRun.Status.ABANDONED)
    started = time.monotonic()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                    [_lock_key(manufacturer.pk, retailer.pk)],
                )
                if not cursor.fetchone()[0]:
                    run.status = ReconciliationRun.Status.SKIPPED
                    run.finished_at = timezone.now()
                    run.save(update_fields=["status", "finished_at"])
                    return run
            state, _ = PairState.objects.select_for_update().get_or_create(
                manufacturer=manufacturer, retailer=retailer
            )
            counts, upto = _Run(state, run, full=full, progress=progress).execute()
            opened = counts.pop("opened_ids", [])
            run.status = ReconciliationRun.Status.DONE
            run.counts = counts
            run.to_record = upto
            run.finished_at = timezone.now()
            run.duration_ms = int((time.monotonic() - started) * 1000)
            run.save(
                update_fields=[
                    "status",
                    "counts",
                    "from_record",
                    "to_record",
                    "finished_at",
                    "duration_ms",
                ]
            )
    except Exception as exc:
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status=ReconciliationRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        raise
    if opened:
        transaction.on_commit(lambda: _announce_opened(opened), robust=True)
    return run


def _announce_opened(ids):
    from .notify import discrepancies_opened

    discrepancies_opened(ids)


def _queryset_sql(queryset):
    sql, params = queryset.values_list(*REC_COLUMNS).query.sql_with_params()
    return sql, list(params)


class _Run:
    def __init__(self, state, run, *, full, progress):
        self.state = state
        self.run = run
        self.m = state.manufacturer
        self.r = state.retailer
        self.full = full or state.record_watermark == 0
        self.progress = progress or (lambda step, done, total: None)
        self.now = timezone.now()
        self.cursor = None
        self.counts = {}

    def sql(self, query, params=()):
        self.cursor.execute(query, params)
        return self.cursor.rowcount

    def execute(self):
        steps = [
            ("scope", self.scope),
            ("shared records", self.shared_records),
            ("links", self.links),
            ("sales and registrations", self.sales_and_registrations),
            ("claims", self.claims),
            ("service", self.service),
            ("loyalty", self.loyalty),
            ("manufacturer only", self.maker_only),
            ("discrepancies", self.upsert),
            ("watermark", self.watermark),
        ]
        with connection.cursor() as self.cursor:
            # The consent joins look expensive to the planner and would be JIT-compiled for
            # seconds per statement; the statements themselves run in a fraction of that.
            self.sql("SET LOCAL jit = off")
            for n, (name, step) in enumerate(steps, 1):
                step()
                self.progress(name, n, len(steps))
        self.counts.pop("_", None)
        return self.counts, self.upto

    # --- what to look at -----------------------------------------------------------------------

    def scope(self):
        self.cursor.execute(
            f"SELECT coalesce(max(id), 0) FROM {TABLE} WHERE submitted_by_id IN (%s, %s)",
            [self.m.pk, self.r.pk],
        )
        self.upto = self.cursor.fetchone()[0]
        self.run.from_record = (
            0 if self.full else max(0, self.state.record_watermark - RECORD_OVERLAP)
        )
        # ON COMMIT DROP cleans up; this covers two runs inside one outer transaction.
        self.sql(
            "DROP TABLE IF EXISTS recon_units, recon_customers, recon_found, recon_rec, recon_own, recon_any_sale"
        )
        self.sql(
            "CREATE TEMP TABLE recon_units (gtin varchar(14), serial varchar(64)) ON COMMIT DROP"
        )
        self.sql("CREATE TEMP TABLE recon_customers (customer_id uuid) ON COMMIT DROP")
        self.sql("""CREATE TEMP TABLE recon_found (kind text, pair boolean, gtin text, serial text,
                    customer_id uuid, key text, detail jsonb, evidence bigint[], roles text[]) ON COMMIT DROP""")
        if self.full:
            return
        parties = [self.m.pk, self.r.pk]
        self.sql(
            f"""INSERT INTO recon_units SELECT DISTINCT gtin, serial FROM {TABLE}
                WHERE submitted_by_id = ANY(%s) AND id > %s AND id <= %s AND gtin <> ''""",
            [parties, self.run.from_record, self.upto],
        )
        self.sql(
            f"""INSERT INTO recon_customers SELECT DISTINCT customer_id FROM {TABLE}
                WHERE submitted_by_id = ANY(%s) AND id > %s AND id <= %s AND customer_id IS NOT NULL""",
            [parties, self.run.from_record, self.upto],
        )
        # Deadlines that passed since the last run: sales awaiting registration, open service.
        since = self.state.time_watermark or self.now
        grace = timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS)
        sla = timedelta(days=settings.RECON_SERVICE_SLA_DAYS)
        self.sql(
            f"""INSERT INTO recon_units SELECT DISTINCT gtin, serial FROM {TABLE}
                WHERE submitted_by_id = ANY(%s) AND gtin <> '' AND (
                  (kind IN ('sale', 'warranty_registration') AND occurred_at > %s AND occurred_at <= %s)
                  OR (kind IN ('service_request', 'service_completion') AND occurred_at > %s AND occurred_at <= %s))""",
            [parties, since - grace, self.now - grace, since - sla, self.now - sla],
        )
        self.sql("CREATE INDEX ON recon_units (gtin, serial)")
        self.counts["units_rechecked"] = self.sql(
            "SELECT 1 FROM (SELECT DISTINCT * FROM recon_units) u"
        )

    def _restrict(self, queryset):
        if self.full:
            return queryset
        return queryset.extra(
            where=[
                f"(({TABLE}.gtin, {TABLE}.serial) IN (SELECT gtin, serial FROM recon_units)"
                f" OR {TABLE}.customer_id IN (SELECT customer_id FROM recon_customers))"
            ]
        )

    def shared_records(self):
        """recon_rec: the retailer's records the manufacturer may see (side R) and the
        manufacturer's records the retailer may see (side M), through the one decision."""
        to_m = self._restrict(
            visible_records(partner=self.m, at=self.now).filter(submitted_by_id=self.r.pk).queryset
        )
        to_r = self._restrict(
            visible_records(partner=self.r, at=self.now).filter(submitted_by_id=self.m.pk).queryset
        )
        sql_m, params_m = _queryset_sql(to_m)
        sql_r, params_r = _queryset_sql(to_r)
        columns = ", ".join(REC_COLUMNS)
        self.sql(
            f"""CREATE TEMP TABLE recon_rec ON COMMIT DROP AS
                SELECT 'R'::text AS side, {columns} FROM ({sql_m}) r_side ({columns})
                UNION ALL
                SELECT 'M'::text AS side, {columns} FROM ({sql_r}) m_side ({columns})""",
            params_m + params_r,
        )
        self.sql("CREATE INDEX ON recon_rec (gtin, serial, kind)")
        self.sql("CREATE INDEX ON recon_rec (kind, side)")
        self.sql("ANALYZE recon_rec")
        self.counts["records_considered"] = self.sql("SELECT 1 FROM recon_rec")

    # --- rules -----------------------------------------------------------------------------------

    def links(self):
        created = self.sql(
            """INSERT INTO reconciliation_recordlink (kind, from_record_id, to_record_id, created_at)
               SELECT 'sale_registration', s.id, g.id, %s
               FROM recon_rec s JOIN recon_rec g
                 ON g.gtin = s.gtin AND g.serial = s.serial AND g.side = 'M' AND g.kind = 'warranty_registration'
               WHERE s.side = 'R' AND s.kind = 'sale'
               ON CONFLICT (kind, from_record_id, to_record_id) DO NOTHING""",
            [self.now],
        )
        created += self.sql(
            """INSERT INTO reconciliation_recordlink (kind, from_record_id, to_record_id, created_at)
               SELECT DISTINCT CASE WHEN a.kind = 'service_request' AND b.kind = 'service_visit' THEN 'request_visit'
                                    WHEN a.kind = 'service_visit' THEN 'visit_completion'
                                    ELSE 'request_completion' END, a.id, b.id, %s
               FROM recon_rec a JOIN recon_rec b
                 ON b.gtin = a.gtin AND b.serial = a.serial
                AND coalesce(b.payload->>'reference', '') = coalesce(a.payload->>'reference', '')
                AND b.occurred_at >= a.occurred_at AND b.id <> a.id
               WHERE (a.kind, b.kind) IN (('service_request', 'service_visit'), ('service_visit', 'service_completion'),
                                          ('service_request', 'service_completion'))
               ON CONFLICT (kind, from_record_id, to_record_id) DO NOTHING""",
            [self.now],
        )
        self.counts["links_created"] = created

    def _found(self, query, params=()):
        self.sql(
            f"INSERT INTO recon_found (kind, pair, gtin, serial, customer_id, key, detail, evidence, roles) {query}",
            params,
        )

    def sales_and_registrations(self):
        tolerance = settings.RECON_DATE_TOLERANCE_DAYS
        self._found(
            """SELECT 'registration_date_mismatch', true, s.gtin, s.serial, coalesce(s.customer_id, g.customer_id),
                      'date_mismatch:' || s.id || ':' || g.id,
                      jsonb_build_object('days_apart', abs(coalesce((g.payload->>'purchase_date')::date,
                          (g.occurred_at AT TIME ZONE 'UTC')::date) - (s.occurred_at AT TIME ZONE 'UTC')::date),
                          'tolerance_days', %s::int),
                      ARRAY[s.id, g.id], ARRAY['sale', 'registration']
               FROM recon_rec s JOIN recon_rec g
                 ON g.gtin = s.gtin AND g.serial = s.serial AND g.side = 'M' AND g.kind = 'warranty_registration'
               WHERE s.side = 'R' AND s.kind = 'sale'
                 AND abs(coalesce((g.payload->>'purchase_date')::date, (g.occurred_at AT TIME ZONE 'UTC')::date)
                         - (s.occurred_at AT TIME ZONE 'UTC')::date) > %s""",
            [tolerance, tolerance],
        )
        self._found(
            """SELECT 'sale_without_registration', true, s.gtin, s.serial, s.customer_id, 'no_registration:' || s.id,
                      jsonb_build_object('grace_days', %s::int), ARRAY[s.id], ARRAY['sale']
               FROM recon_rec s
               WHERE s.side = 'R' AND s.kind = 'sale' AND s.occurred_at <= %s
                 AND NOT EXISTS (SELECT 1 FROM recon_rec g WHERE g.side = 'M' AND g.kind = 'warranty_registration'
                                 AND g.gtin = s.gtin AND g.serial = s.serial)
                 AND NOT EXISTS (SELECT 1 FROM recon_rec x WHERE x.side = 'R' AND x.kind = 'return'
                                 AND x.gtin = s.gtin AND x.serial = s.serial AND x.occurred_at >= s.occurred_at)""",
            [
                settings.RECON_REGISTRATION_GRACE_DAYS,
                self.now - timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS),
            ],
        )

    def claims(self):
        self._found(
            """SELECT 'claim_before_sale', true, c.gtin, c.serial, c.customer_id, 'claim_before_sale:' || c.id,
                      jsonb_build_object('days_before', ((s.occurred_at - c.occurred_at))::text),
                      ARRAY[c.id, s.id], ARRAY['claim', 'sale']
               FROM recon_rec c
               JOIN LATERAL (SELECT * FROM recon_rec s WHERE s.side = 'R' AND s.kind = 'sale'
                             AND s.gtin = c.gtin AND s.serial = c.serial ORDER BY s.occurred_at LIMIT 1) s ON true
               WHERE c.kind = 'warranty_claim' AND c.occurred_at < s.occurred_at"""
        )
        self._found(
            """SELECT 'claim_outside_warranty', true, c.gtin, c.serial, c.customer_id, 'claim_outside_warranty:' || c.id,
                      jsonb_build_object('warranty_months', w.months, 'warranty_ended', (s.occurred_at + make_interval(months => w.months))::date),
                      ARRAY[c.id, s.id], ARRAY['claim', 'sale']
               FROM recon_rec c
               JOIN LATERAL (SELECT * FROM recon_rec s WHERE s.side = 'R' AND s.kind = 'sale' AND s.gtin = c.gtin
                             AND s.serial = c.serial AND s.occurred_at <= c.occurred_at
                             ORDER BY s.occurred_at DESC LIMIT 1) s ON true
               CROSS JOIN LATERAL (SELECT coalesce((SELECT (g.payload->>'warranty_months')::int FROM recon_rec g
                                   WHERE g.side = 'M' AND g.kind = 'warranty_registration' AND g.gtin = c.gtin
                                   AND g.serial = c.serial ORDER BY g.occurred_at DESC LIMIT 1), %s) AS months) w
               WHERE c.kind = 'warranty_claim'
                 AND c.occurred_at > s.occurred_at + make_interval(months => w.months)""",
            [settings.RECON_DEFAULT_WARRANTY_MONTHS],
        )
        self._found(
            """SELECT 'repeated_claims', true, c.gtin, c.serial, min(c.customer_id::text)::uuid,
                      'repeated_claims:' || c.gtin || ':' || c.serial, jsonb_build_object('claims', count(*)),
                      array_agg(c.id ORDER BY c.id), array_fill('claim'::text, ARRAY[count(*)::int])
               FROM recon_rec c WHERE c.kind = 'warranty_claim'
               GROUP BY c.gtin, c.serial HAVING count(*) >= 2"""
        )

    def service(self):
        sla_cutoff = self.now - timedelta(days=settings.RECON_SERVICE_SLA_DAYS)
        self._found(
            """SELECT 'service_status_conflict', true, q.gtin, q.serial, q.customer_id,
                      'service_conflict:' || q.id || ':' || k.id,
                      jsonb_build_object('request_status', q.payload->>'status', 'reference', q.payload->>'reference'),
                      ARRAY[q.id, k.id], ARRAY['request', 'completion']
               FROM recon_rec q JOIN recon_rec k
                 ON k.gtin = q.gtin AND k.serial = q.serial AND k.kind = 'service_completion'
                AND coalesce(k.payload->>'reference', '') = coalesce(q.payload->>'reference', '')
                AND k.occurred_at >= q.occurred_at AND k.occurred_at <= %s
               WHERE q.kind = 'service_request' AND coalesce(q.payload->>'status', 'open') IN ('open', 'in_progress')""",
            [sla_cutoff],
        )
        self._found(
            """SELECT 'service_overdue', true, q.gtin, q.serial, q.customer_id, 'service_overdue:' || q.id,
                      jsonb_build_object('sla_days', %s::int, 'reference', q.payload->>'reference'),
                      ARRAY[q.id], ARRAY['request']
               FROM recon_rec q
               WHERE q.kind = 'service_request' AND coalesce(q.payload->>'status', 'open') IN ('open', 'in_progress')
                 AND q.occurred_at <= %s
                 AND NOT EXISTS (SELECT 1 FROM recon_rec v WHERE v.kind IN ('service_visit', 'service_completion')
                                 AND v.gtin = q.gtin AND v.serial = q.serial AND v.occurred_at >= q.occurred_at
                                 AND coalesce(v.payload->>'reference', '') = coalesce(q.payload->>'reference', ''))""",
            [settings.RECON_SERVICE_SLA_DAYS, sla_cutoff],
        )

    def loyalty(self):
        self._found(
            """SELECT 'accrual_not_reversed', true, a.gtin, a.serial, a.customer_id, 'not_reversed:' || a.id,
                      jsonb_build_object('points', (a.payload->>'points')::int, 'sale_reference', a.payload->>'sale_reference'),
                      ARRAY[a.id, x.id], ARRAY['accrual', 'return']
               FROM recon_rec a JOIN recon_rec x
                 ON x.side = a.side AND x.kind = 'return' AND x.payload->>'sale_reference' = a.payload->>'sale_reference'
               WHERE a.kind = 'loyalty_accrual' AND (a.payload->>'points')::int > 0
                 AND coalesce(a.payload->>'sale_reference', '') <> ''
                 AND NOT EXISTS (SELECT 1 FROM recon_rec v WHERE v.side = a.side AND v.kind = 'loyalty_accrual'
                                 AND v.payload->>'sale_reference' = a.payload->>'sale_reference'
                                 AND (v.payload->>'points')::int < 0)"""
        )
        self._found(
            """SELECT 'double_credit', true, a.gtin, a.serial, a.customer_id, 'double_credit:' || a.id || ':' || b.id,
                      jsonb_build_object('retailer_points', (a.payload->>'points')::int,
                                         'manufacturer_points', (b.payload->>'points')::int),
                      ARRAY[a.id, b.id], ARRAY['retailer accrual', 'manufacturer accrual']
               FROM recon_rec a JOIN recon_rec b
                 ON b.side = 'M' AND b.kind = 'loyalty_accrual' AND b.gtin = a.gtin AND b.serial = a.serial
                AND coalesce(b.payload->>'reason', 'purchase') = 'purchase' AND (b.payload->>'points')::int > 0
               WHERE a.side = 'R' AND a.kind = 'loyalty_accrual' AND a.gtin <> ''
                 AND coalesce(a.payload->>'reason', 'purchase') = 'purchase' AND (a.payload->>'points')::int > 0"""
        )
        self._found(
            """SELECT 'redemption_exceeds_balance', true, '', '', t.customer_id, 'overdrawn:' || t.id,
                      jsonb_build_object('balance_after', t.balance), ARRAY[t.id], ARRAY['redemption']
               FROM (SELECT id, kind, customer_id,
                            sum(CASE WHEN kind = 'loyalty_redemption' THEN -(payload->>'points')::int
                                     ELSE (payload->>'points')::int END)
                              OVER (PARTITION BY side, customer_id ORDER BY occurred_at, id) AS balance
                     FROM recon_rec WHERE kind IN ('loyalty_accrual', 'loyalty_redemption')
                       AND customer_id IS NOT NULL) t
               WHERE t.kind = 'loyalty_redemption' AND t.balance < 0"""
        )

    def maker_only(self):
        """Registrations and claims of the manufacturer with no sale that it may see from any
        retailer: the manufacturer's own records, in its own queue."""
        own = self._restrict(
            visible_records(partner=self.m, at=self.now)
            .filter(submitted_by_id=self.m.pk, kind__in=["warranty_registration", "warranty_claim"])
            .queryset
        )
        any_sale = self._restrict(
            visible_records(partner=self.m, at=self.now).filter(kind="sale").queryset
        )
        sql_own, params_own = _queryset_sql(own)
        sql_sale, params_sale = _queryset_sql(any_sale)
        columns = ", ".join(REC_COLUMNS)
        self.sql(
            f"CREATE TEMP TABLE recon_own ON COMMIT DROP AS SELECT * FROM ({sql_own}) o ({columns})",
            params_own,
        )
        self.sql(
            f"CREATE TEMP TABLE recon_any_sale ON COMMIT DROP AS SELECT DISTINCT gtin, serial FROM ({sql_sale}) s ({columns})",
            params_sale,
        )
        self.sql("CREATE INDEX ON recon_any_sale (gtin, serial)")
        grace_cutoff = self.now - timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS)
        self._found(
            """SELECT CASE kind WHEN 'warranty_claim' THEN 'claim_without_sale' ELSE 'registration_without_sale' END,
                      false, g.gtin, g.serial, g.customer_id,
                      CASE kind WHEN 'warranty_claim' THEN 'claim_without_sale:' ELSE 'no_sale:' END || g.id,
                      '{}'::jsonb, ARRAY[g.id],
                      ARRAY[CASE kind WHEN 'warranty_claim' THEN 'claim' ELSE 'registration' END]
               FROM recon_own g
               WHERE (g.kind = 'warranty_claim' OR g.occurred_at <= %s)
                 AND NOT EXISTS (SELECT 1 FROM recon_any_sale a WHERE a.gtin = g.gtin AND a.serial = g.serial)""",
            [grace_cutoff],
        )

    # --- results ---------------------------------------------------------------------------------

    def upsert(self):
        m, r = self.m.pk, self.r.pk
        # Without these the resolve step below plans a nested loop over two large sets.
        self.sql("CREATE INDEX ON recon_found (key)")
        self.sql("ANALYZE recon_found")
        severity_cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SEVERITY.items())
        self.cursor.execute(
            f"""INSERT INTO reconciliation_discrepancy
                  (id, manufacturer_id, retailer_id, kind, severity, key, gtin, serial, customer_id, detail, status,
                   opened_at, updated_at, opened_by_run_id)
                SELECT gen_random_uuid(), %s, CASE WHEN f.pair THEN %s::uuid END, f.kind,
                       CASE f.kind {severity_cases} ELSE 'medium' END, f.key, f.gtin, f.serial, f.customer_id,
                       f.detail, 'open', %s, %s, %s
                FROM (SELECT DISTINCT ON (pair, key) * FROM recon_found ORDER BY pair, key) f
                ON CONFLICT (manufacturer_id, retailer_id, key) DO NOTHING
                RETURNING id""",
            [m, r, self.now, self.now, self.run.pk],
        )
        opened = [row[0] for row in self.cursor.fetchall()]
        self.sql(
            """INSERT INTO reconciliation_discrepancyevidence (discrepancy_id, record_id, role)
               SELECT d.id, e.record_id, e.role
               FROM recon_found f
               CROSS JOIN LATERAL unnest(f.evidence, f.roles) AS e(record_id, role)
               JOIN reconciliation_discrepancy d
                 ON d.manufacturer_id = %s AND d.retailer_id IS NOT DISTINCT FROM (CASE WHEN f.pair THEN %s::uuid END)
                AND d.key = f.key
               ON CONFLICT (discrepancy_id, record_id) DO NOTHING""",
            [m, r],
        )
        if opened:
            self.sql(
                """INSERT INTO reconciliation_discrepancynote (discrepancy_id, action, text, created_at)
                   SELECT unnest(%s::uuid[]), 'opened', '', %s""",
                [opened, self.now],
            )
        # What no longer holds on the re-evaluated units and customers resolves itself.
        scope = (
            ""
            if self.full
            else (
                " AND ((d.gtin, d.serial) IN (SELECT gtin, serial FROM recon_units)"
                " OR d.customer_id IN (SELECT customer_id FROM recon_customers))"
            )
        )
        self.sql("ANALYZE reconciliation_discrepancy")
        self.cursor.execute(
            f"""UPDATE reconciliation_discrepancy d SET status = 'resolved', updated_at = %s
                WHERE d.manufacturer_id = %s AND (d.retailer_id = %s OR d.retailer_id IS NULL) AND d.status = 'open'
                  AND NOT EXISTS (SELECT 1 FROM recon_found f WHERE f.key = d.key
                                  AND (CASE WHEN f.pair THEN %s::uuid END) IS NOT DISTINCT FROM d.retailer_id)
                  {scope}
                RETURNING d.id""",
            [self.now, m, r, r],
        )
        resolved = [row[0] for row in self.cursor.fetchall()]
        if resolved:
            self.sql(
                """INSERT INTO reconciliation_discrepancynote (discrepancy_id, action, text, created_at)
                   SELECT unnest(%s::uuid[]), 'auto_resolved', 'The records now agree.', %s""",
                [resolved, self.now],
            )
        self.counts.update(
            found=self.sql("SELECT 1 FROM recon_found"),
            opened=len(opened),
            auto_resolved=len(resolved),
            opened_ids=[str(i) for i in opened],
        )

    def watermark(self):
        self.state.record_watermark = max(self.state.record_watermark, self.upto)
        self.state.time_watermark = self.now
        self.state.updated_at = self.now
        self.state.save(update_fields=["record_watermark", "time_watermark", "updated_at"])
