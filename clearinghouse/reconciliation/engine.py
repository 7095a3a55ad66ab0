"""Reconciliation of one manufacturer–retailer pair, set-based in PostgreSQL and incremental.

A run works only on what the two parties may see of each other's records — the records of each
party that the one visibility decision (``visible_records``) lets the other see — so that no
discrepancy reveals a record its counterpart may not see. Findings that concern the manufacturer
alone (a registration or a claim with no sale from any retailer) use the manufacturer's own
records and go to its queue only.

Incremental: a run looks at the records that arrived since the pair's watermark (with an overlap,
because record ids are assigned before their transactions commit) and re-evaluates every rule on
the units and customers those records touch, plus the units whose time-based deadlines passed
since the last run, plus the units and ledgers of customers whose consent to either party was
granted, withdrawn or ran out since then (what each side may see of them changed). A change to the
pair's agreement makes the next run a full one, as does the nightly run or a request.

Erasure: a tombstoned record (an erased customer's, its customer and payload gone) is evidence of
nothing, in any rule; the units of the pair's open findings about a customer erased since the
last run are re-checked (whether or not that customer ever consented to either party: the
manufacturer's own findings need no consent), and after the run no finding of the pair, whatever
its status, still names a customer who is erased.

Crash-safe: all of a run's writes happen in one transaction, links and discrepancies are upserted
on unique keys, and a second run waits for nothing (a busy pair is skipped). A worker killed in
the middle of a run leaves nothing behind but a run row marked abandoned by the next run.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import timezone

from clearinghouse.records.visibility import visible_records
from consent.models import ConsentGrant, Customer
from partners.models import AgreementVersion, SharingAgreement

from .models import Discrepancy, PairState, ReconciliationRun, WarrantyTerms
from .notify import anybody_listens, discrepancies_opened, discrepancies_updated

logger = logging.getLogger(__name__)
RECORD_OVERLAP = 5000
# The most a run may take (the task's hard time limit): a run still "running" after that has
# lost its worker. Below the broker's visibility timeout, so a live run is never redelivered.
RUN_TIME_LIMIT = 30 * 60
# Consent changes are found by their timestamps, taken before their transactions commit: a change
# dated up to this long before the last run started is looked at again.
CHANGE_OVERLAP = timedelta(minutes=5)
# PostgreSQL memory per sort or hash of a full run's transaction (its hash joins stay in memory).
WORK_MEM = "64MB"
# The kinds of the per-customer ledger rules (points not reversed, redemption beyond the balance):
# the only rules that look at a customer's records across units.
CUSTOMER_KINDS = ("loyalty_accrual", "loyalty_redemption", "return")
CUSTOMER_FINDINGS = ("accrual_not_reversed", "redemption_exceeds_balance")
TEMP_TABLES = (
    "recon_units",
    "recon_unit",
    "recon_customers",
    "recon_new",
    "recon_consented",
    "recon_erased",
    "recon_ids",
    "recon_found",
    "recon_rec",
    "recon_rest",
    "recon_own",
    "recon_claim",
    "recon_opened",
    "recon_other_sale",
    "recon_case",
)
TABLE = "records_interactionrecord"
REC_COLUMNS = ("id", "kind", "gtin", "serial", "customer_id", "occurred_at", "payload")
PAYLOAD_FIELDS = (
    "purchase_date",
    "warranty_months",
    "reference",
    "status",
    "sale_reference",
    "points",
    "reason",
)

# A sale and a registration are of the same purchase when they name the same unit, and the same
# customer where both records name one (an anonymous sale, or a registration sent without the
# customer, matches on the unit alone).
SAME_CUSTOMER = (
    "({a}.customer_id IS NULL OR {b}.customer_id IS NULL OR {a}.customer_id = {b}.customer_id)"
)
# The same, between a sale ``s`` and a registration ``g``: as every rule and link writes it.
SALE_REGISTRATION_CUSTOMER = SAME_CUSTOMER.format(a="s", b="g")

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
    "service_status_conflict": "A service case is completed on one side, and still open or the unit returned on the other.",
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
    ReconciliationRun.objects.for_partner(manufacturer).filter(
        manufacturer=manufacturer,
        retailer=retailer,
        status=ReconciliationRun.Status.RUNNING,
        started_at__lt=timezone.now() - timedelta(seconds=RUN_TIME_LIMIT),
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
            resolved = counts.pop("resolved_ids", [])
            # The run's webhooks go in its outbox, in its transaction: nothing to announce, or
            # nobody listening, and it is announced already.
            if (opened or resolved) and anybody_listens((manufacturer, retailer)):
                run.pending_opened, run.pending_resolved = opened, resolved
            else:
                run.announced_at = timezone.now()
            run.status = ReconciliationRun.Status.DONE
            run.counts = counts
            run.to_record = upto
            run.finished_at = timezone.now()
            run.duration_ms = int((time.monotonic() - started) * 1000)
            run.save(
                update_fields=[
                    "status",
                    "pending_opened",
                    "pending_resolved",
                    "announced_at",
                    "counts",
                    "from_record",
                    "to_record",
                    "finished_at",
                    "duration_ms",
                ]
            )
    except Exception as exc:
        ReconciliationRun.objects.for_partner(manufacturer).filter(pk=run.pk).update(
            status=ReconciliationRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        raise
    if run.announced_at is None:
        transaction.on_commit(lambda: _announce_later(run.pk), robust=True)
    return run


def _announce_later(run_id):
    from .tasks import announce_run

    try:
        announce_run.delay(run_id)
    except Exception:  # Redis away: the sweep announces it
        logger.warning("could not enqueue the run's webhooks; the sweep will", exc_info=True)


def run_announce(*, run_id):
    """Emit a done run's pending webhooks (what it opened, what it resolved by itself) and
    empty its outbox, in one transaction: a worker killed half-way leaves the outbox as it was,
    and the events it had stored are found again by their dedupe keys. Returns how many
    discrepancies were announced, or None when there was nothing to do."""
    with transaction.atomic():
        run = (
            ReconciliationRun.objects.unscoped("the task announces the run id it was given")
            .select_for_update(skip_locked=True)
            .filter(pk=run_id, status=ReconciliationRun.Status.DONE, announced_at__isnull=True)
            .first()
        )
        if run is None:
            return None
        parties = (run.manufacturer_id, run.retailer_id)
        opened = [str(i) for i in run.pending_opened]
        resolved = [str(i) for i in run.pending_resolved]
        if opened:
            discrepancies_opened(opened, parties=parties)
        if resolved:
            discrepancies_updated(resolved, parties=parties)
        run.pending_opened, run.pending_resolved = [], []
        run.announced_at = timezone.now()
        run.save(update_fields=["pending_opened", "pending_resolved", "announced_at"])
    return len(opened) + len(resolved)


class _Run:
    def __init__(self, state, run, *, full, progress):
        self.state = state
        self.run = run
        self.m = state.manufacturer
        self.r = state.retailer
        # What the pair's agreement in force is (its status and countersigned version): when it
        # changed since the last run, what each side may see changed for every record. And
        # who credits loyalty points for a purchase under that version. The manufacturer's
        # warranty terms count too: a change re-evaluates every claim of the pair.
        agreement, self.purchase_points = self._agreement_in_force()
        self.agreement = f"{agreement}|{self._terms_stamp()}" if agreement else ""
        self.full = full or state.record_watermark == 0 or state.agreement != self.agreement
        self.progress = progress or (lambda step, done, total: None)
        self.now = timezone.now()
        self.cursor = None
        self.counts = {}

    def _agreement_in_force(self):
        in_force = AgreementVersion.objects.for_partner(self.m).filter(
            agreement=OuterRef("pk"), status=AgreementVersion.Status.ACTIVE
        )
        agreement = (
            SharingAgreement.objects.for_partner(self.m)
            .filter(manufacturer=self.m, retailer=self.r)
            .exclude(status=SharingAgreement.Status.TERMINATED)
            .annotate(
                in_force=Subquery(in_force.values("pk")[:1]),
                purchase_points=Subquery(in_force.values("purchase_points")[:1]),
            )
            .values_list("pk", "status", "in_force", "purchase_points")
            .first()
        )
        if agreement is None:
            return "", AgreementVersion.PurchasePoints.ONE
        *fingerprint, purchase_points = agreement
        return (
            ":".join(str(part) for part in fingerprint),
            purchase_points or AgreementVersion.PurchasePoints.ONE,
        )

    def _terms_stamp(self):
        terms = WarrantyTerms.objects.for_partner(self.m).aggregate(
            n=Count("pk"), last=Max("updated_at")
        )
        return f"terms:{terms['n']}:{terms['last'].timestamp() if terms['last'] else 0}"

    def sql(self, query, params=()):
        self.cursor.execute(query, params)
        return self.cursor.rowcount

    def count(self, table):
        self.cursor.execute(f"SELECT count(*) FROM {table}")
        return self.cursor.fetchone()[0]

    def execute(self):
        steps = [
            ("scope", self.scope),
            ("shared records", self.shared_records),
            ("sale-registration links", self.links),
            ("sales and registrations", self.sales_and_registrations),
            ("claims", self.claims),
            ("service", self.service),
            ("loyalty", self.loyalty),
            ("manufacturer only", self.maker_only),
            ("discrepancies", self.upsert),
            ("erased customers", self.forget_erased),
            ("watermark", self.watermark),
        ]
        with connection.cursor() as self.cursor:
            # The consent joins look expensive to the planner and would be JIT-compiled for
            # seconds per statement; the statements themselves run in a fraction of that.
            self.sql("SET LOCAL jit = off")
            if self.full:
                # Hash joins and hashed visibility checks over a pair's records, in memory. Not
                # for an incremental run: with room to hash every consent of the partner, the
                # planner builds those hashes for a few thousand records instead of looking
                # each record's consent up.
                self.sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
            for n, (name, step) in enumerate(steps, 1):
                step()
                self.progress(name, n, len(steps))
        self.counts.pop("_", None)
        return self.counts, self.upto

    # --- what to look at -----------------------------------------------------------------------

    def scope(self):
        # The highest id, and the oldest transaction still open, in one snapshot.
        self.cursor.execute(
            f"""SELECT coalesce(max(id), 0), pg_snapshot_xmin(pg_current_snapshot())::text::bigint
                FROM {TABLE} WHERE submitted_by_id IN (%s, %s)""",
            [self.m.pk, self.r.pk],
        )
        self.upto, self.horizon = self.cursor.fetchone()
        self.run.from_record = (
            0 if self.full else max(0, self.state.record_watermark - RECORD_OVERLAP)
        )
        # ON COMMIT DROP cleans up; this covers two runs inside one outer transaction.
        self.sql(f"DROP TABLE IF EXISTS {', '.join(TEMP_TABLES)}")
        self.sql(
            "CREATE TEMP TABLE recon_units (gtin varchar(14), serial varchar(64)) ON COMMIT DROP"
        )
        self.sql("CREATE TEMP TABLE recon_customers (customer_id uuid) ON COMMIT DROP")
        # Byte-wise text, like the discrepancy columns it becomes (sorted and compared by key).
        self.sql("""CREATE TEMP TABLE recon_found (kind text, pair boolean, gtin text COLLATE "C",
                    serial text COLLATE "C", customer_id uuid, key text COLLATE "C", detail jsonb,
                    evidence bigint[], roles text[]) ON COMMIT DROP""")
        if self.full:
            return
        parties = [self.m.pk, self.r.pk]
        # What arrived: an id range (the primary key), never a scan of the table. Of the overlap
        # below the watermark, only what transactions open at the last run wrote (age() counts
        # back from this transaction's id; a frozen row is the oldest of all).
        late, late_params = "true", []
        if self.state.xact_horizon is not None:
            late = "age(xmin) <= pg_current_xact_id()::text::bigint - %s"
            late_params = [self.state.xact_horizon]
        self.sql(
            f"""CREATE TEMP TABLE recon_new ON COMMIT DROP AS
                SELECT kind, gtin, serial, customer_id FROM {TABLE}
                WHERE id > %s AND id <= %s AND submitted_by_id = ANY(%s) AND (id > %s OR {late})""",
            [
                self.run.from_record,
                self.upto,
                parties,
                self.state.record_watermark,
                *late_params,
            ],
        )
        self.sql("INSERT INTO recon_units SELECT gtin, serial FROM recon_new WHERE gtin <> ''")
        # Only the ledger rules look at a customer's records across units.
        self.sql(
            """INSERT INTO recon_customers SELECT DISTINCT customer_id FROM recon_new
               WHERE customer_id IS NOT NULL AND kind = ANY(%s)""",
            [list(CUSTOMER_KINDS)],
        )
        since = self.state.time_watermark or self.now
        # Customers whose consent to either party began, was withdrawn or ran out since the last
        # run (by the grant indexes on grantee and time): all their records of the pair.
        changed = since - CHANGE_OVERLAP
        self.sql(
            f"""CREATE TEMP TABLE recon_consented ON COMMIT DROP AS
                SELECT DISTINCT customer_id FROM {ConsentGrant._meta.db_table}
                WHERE grantee_id = ANY(%s) AND (granted_at > %s OR revoked_at > %s
                      OR (expires_at > %s AND expires_at <= %s))""",
            [parties, changed, changed, changed, self.now],
        )
        self.counts["consents_changed"] = self.count("recon_consented")
        self.sql(
            f"""INSERT INTO recon_units SELECT r.gtin, r.serial FROM recon_consented c
                JOIN {TABLE} r ON r.customer_id = c.customer_id
                WHERE r.submitted_by_id = ANY(%s) AND r.gtin <> ''""",
            [parties],
        )
        # Customers erased since the last run (the partial index on erasure time), whether or
        # not they consented to either party: the manufacturer's own findings need no consent.
        self._erased_since(changed)
        self.counts["customers_erased"] = self.count("recon_erased")
        # An erasure clears the customer from the records: the units of the pair's open
        # findings about such a customer are found by the findings (the customer index).
        self.sql(
            f"""INSERT INTO recon_units SELECT d.gtin, d.serial
                FROM (SELECT customer_id FROM recon_consented
                      UNION SELECT customer_id FROM recon_erased) c
                JOIN {Discrepancy._meta.db_table} d ON d.customer_id = c.customer_id
                WHERE d.manufacturer_id = %s AND (d.retailer_id = %s OR d.retailer_id IS NULL)
                  AND d.status = 'open' AND d.gtin <> ''""",
            [self.m.pk, self.r.pk],
        )
        # Their ledger findings too (a ledger finding names no unit).
        self.sql(
            """INSERT INTO recon_customers
               SELECT customer_id FROM recon_consented UNION SELECT customer_id FROM recon_erased
               EXCEPT SELECT customer_id FROM recon_customers"""
        )
        # Deadlines that passed since the last run: sales awaiting registration, open service
        # (an index on partner, kind and time).
        grace = timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS)
        sla = timedelta(days=settings.RECON_SERVICE_SLA_DAYS)
        for kinds, window in (
            (["sale", "warranty_registration"], grace),
            (["service_request", "service_completion"], sla),
        ):
            self.sql(
                f"""INSERT INTO recon_units SELECT gtin, serial FROM {TABLE}
                    WHERE submitted_by_id = ANY(%s) AND kind = ANY(%s) AND occurred_at > %s
                      AND occurred_at <= %s AND gtin <> ''""",
                [parties, kinds, since - window, self.now - window],
            )
        self.sql(
            "CREATE TEMP TABLE recon_unit ON COMMIT DROP AS SELECT DISTINCT gtin, serial FROM recon_units"
        )
        self.counts["units_rechecked"] = self.count("recon_unit")
        self.sql("CREATE INDEX ON recon_unit (gtin, serial)")
        self.sql("ANALYZE recon_unit")
        self.sql("ANALYZE recon_customers")
        # The records to look at, by the unit and customer indexes of the records table: every
        # record on a re-checked unit, and the ledger records of a re-checked customer.
        # (OFFSET 0 keeps each lookup a parameterised index scan, never a scan of the table.)
        self.sql(
            f"""CREATE TEMP TABLE recon_ids ON COMMIT DROP AS
                SELECT r.* FROM recon_unit u CROSS JOIN LATERAL (
                    SELECT id, submitted_by_id, kind FROM {TABLE}
                    WHERE gtin = u.gtin AND serial = u.serial OFFSET 0) r
                UNION
                SELECT r.* FROM recon_customers c CROSS JOIN LATERAL (
                    SELECT id, submitted_by_id, kind FROM {TABLE}
                    WHERE customer_id = c.customer_id AND kind = ANY(%s) OFFSET 0) r""",
            [list(CUSTOMER_KINDS)],
        )
        # The rules' lookups of these ids (``_restrict``) are semi-joins. With the records
        # table's statistics stale (just after a large ingest, before autovacuum analyses it)
        # the planner expects a handful of records and loops over them, scanning recon_ids for
        # each: 100+ s on 24,000 units. With an index, the same plan is a probe per record.
        self.sql("CREATE INDEX ON recon_ids (id)")
        self.sql("ANALYZE recon_ids")

    def _erased_since(self, since=None):
        """recon_erased: the customers erased after ``since`` (every erased customer without
        it), by the partial index on erasure time, never a scan of the customers."""
        erased, params = "erased_at IS NOT NULL", []
        if since is not None:
            erased, params = "erased_at > %s", [since]
        self.sql(
            f"""CREATE TEMP TABLE recon_erased ON COMMIT DROP AS
                SELECT id AS customer_id FROM {Customer._meta.db_table} WHERE {erased}""",
            params,
        )
        self.sql("ANALYZE recon_erased")

    def _evidence(self, *, partner):
        """What ``partner`` may see now (the one decision), less tombstones: an erased
        customer's record, its customer and payload gone, is evidence of nothing (a partner's own
        tombstones stay visible to it, and a registration with no payload and no customer would
        be a registration without a sale)."""
        return visible_records(partner=partner, at=self.now).filter(tombstoned_at__isnull=True)

    def _restrict(self, visible, *, submitted_by=None, other_than=None, kinds=None):
        """The SQL of ``visible`` (the decision's one escape, ``compile_sql``) limited to the
        records this run looks at (all in a full run). The filters repeat the caller's, so that
        only the matching candidates are looked up."""
        if self.full:
            return visible.compile_sql(*REC_COLUMNS)
        conditions, params = ["true"], []
        if submitted_by is not None:
            conditions.append("submitted_by_id = %s")
            params.append(submitted_by)
        if other_than is not None:
            conditions.append("submitted_by_id <> %s")
            params.append(other_than)
        if kinds is not None:
            conditions.append("kind = ANY(%s)")
            params.append(list(kinds))
        # ANDed with the visibility rule, so the planner joins the few ids to the primary key.
        return visible.compile_sql(
            *REC_COLUMNS,
            where=f"{TABLE}.id IN (SELECT id FROM recon_ids WHERE {' AND '.join(conditions)})",
            params=params,
        )

    def shared_records(self):
        """recon_rec: the retailer's records the manufacturer may see (side R) and the
        manufacturer's records the retailer may see (side M), through the one decision."""
        sql_m, params_m = self._restrict(
            self._evidence(partner=self.m).filter(submitted_by_id=self.r.pk),
            submitted_by=self.r.pk,
        )
        sql_r, params_r = self._restrict(
            self._evidence(partner=self.r).filter(submitted_by_id=self.m.pk),
            submitted_by=self.m.pk,
        )
        columns = ", ".join(REC_COLUMNS)
        # Narrow rows: the payload fields the rules read, as text (a 1M-record pair's table is a
        # quarter of the size with the whole payload, and every rule scans it).
        narrow = ", ".join(
            [c for c in REC_COLUMNS if c != "payload"]
            + [f"payload->>'{field}' AS {field}" for field in PAYLOAD_FIELDS]
        )
        self.sql(
            f"""CREATE TEMP TABLE recon_rec ON COMMIT DROP AS
                SELECT 'R'::text AS side, {narrow} FROM ({sql_m}) r_side ({columns})
                UNION ALL
                SELECT 'M'::text AS side, {narrow} FROM ({sql_r}) m_side ({columns})""",
            params_m + params_r,
        )
        # No index: every rule below is a hash join over whole sets.
        self.sql("ANALYZE recon_rec (side, kind, gtin, serial, customer_id)")
        # Sales and registrations are nearly all of a pair's records: the claim, service and
        # loyalty rules read the rest, copied once, rather than scan them all again each.
        self.sql(
            """CREATE TEMP TABLE recon_rest ON COMMIT DROP AS
               SELECT * FROM recon_rec WHERE kind NOT IN ('sale', 'warranty_registration')"""
        )
        self.sql("ANALYZE recon_rest (side, kind, gtin, serial, customer_id)")
        self.counts["records_considered"] = self.count("recon_rec")

    # --- rules -----------------------------------------------------------------------------------

    def links(self):
        if self.full:
            # From here to the manufacturer-only step the rules join whole working tables: hash
            # joins. A nested loop chosen on a misestimate (a pair where nearly every sale has
            # its registration looks like one with none left) would rescan a table for each of
            # a million rows.
            self.sql("SET LOCAL enable_nestloop = off")
        # A sale of the retailer and a registration of the manufacturer: a link only this pair
        # writes, and only one run of the pair runs at a time (the lock). So a plain insert of
        # the links not there yet, in the order of the unique key (each index entry goes to the
        # right-hand end of the index); the unique key still stops a duplicate.
        created = self.sql(
            f"""INSERT INTO reconciliation_recordlink (kind, from_record_id, to_record_id, created_at)
               SELECT 'sale_registration', s.id, g.id, %s
               FROM recon_rec s JOIN recon_rec g
                 ON g.gtin = s.gtin AND g.serial = s.serial AND g.side = 'M' AND g.kind = 'warranty_registration'
               WHERE s.side = 'R' AND s.kind = 'sale' AND {SALE_REGISTRATION_CUSTOMER}
                 AND NOT EXISTS (SELECT 1 FROM reconciliation_recordlink l WHERE l.from_record_id = s.id
                                 AND l.to_record_id = g.id AND l.kind = 'sale_registration')
               ORDER BY s.id, g.id""",
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
            f"""SELECT 'registration_date_mismatch', true, s.gtin, s.serial, coalesce(s.customer_id, g.customer_id),
                      'date_mismatch:' || s.id || ':' || g.id,
                      jsonb_build_object('days_apart', abs(coalesce((g.purchase_date)::date,
                          (g.occurred_at AT TIME ZONE 'UTC')::date) - (s.occurred_at AT TIME ZONE 'UTC')::date),
                          'tolerance_days', %s::int),
                      ARRAY[s.id, g.id], ARRAY['sale', 'registration']
               FROM recon_rec s JOIN recon_rec g
                 ON g.gtin = s.gtin AND g.serial = s.serial AND g.side = 'M' AND g.kind = 'warranty_registration'
               WHERE s.side = 'R' AND s.kind = 'sale' AND {SALE_REGISTRATION_CUSTOMER}
                 AND abs(coalesce((g.purchase_date)::date, (g.occurred_at AT TIME ZONE 'UTC')::date)
                         - (s.occurred_at AT TIME ZONE 'UTC')::date) > %s""",
            [tolerance, tolerance],
        )
        self._found(
            f"""SELECT 'sale_without_registration', true, s.gtin, s.serial, s.customer_id, 'no_registration:' || s.id,
                      jsonb_build_object('grace_days', %s::int), ARRAY[s.id], ARRAY['sale']
               FROM recon_rec s
               WHERE s.side = 'R' AND s.kind = 'sale' AND s.occurred_at <= %s
                 AND NOT EXISTS (SELECT 1 FROM recon_rec g WHERE g.side = 'M' AND g.kind = 'warranty_registration'
                                 AND g.gtin = s.gtin AND g.serial = s.serial AND {SALE_REGISTRATION_CUSTOMER})
                 AND NOT EXISTS (SELECT 1 FROM recon_rest x WHERE x.side = 'R' AND x.kind = 'return'
                                 AND x.gtin = s.gtin AND x.serial = s.serial AND x.occurred_at >= s.occurred_at)""",
            [
                settings.RECON_REGISTRATION_GRACE_DAYS,
                self.now - timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS),
            ],
        )

    def claims(self):
        # Hash joins over the claimed units' sales (no per-claim lookups, no index on recon_rec).
        self.sql(
            """CREATE TEMP TABLE recon_claim ON COMMIT DROP AS
               SELECT id, gtin, serial, customer_id, occurred_at FROM recon_rest WHERE kind = 'warranty_claim'"""
        )
        self.sql("ANALYZE recon_claim")
        self._found(
            """SELECT 'claim_before_sale', true, c.gtin, c.serial, c.customer_id, 'claim_before_sale:' || c.id,
                      jsonb_build_object('days_before', ((s.occurred_at - c.occurred_at))::text),
                      ARRAY[c.id, s.id], ARRAY['claim', 'sale']
               FROM recon_claim c
               JOIN (SELECT DISTINCT ON (s.gtin, s.serial) s.gtin, s.serial, s.id, s.occurred_at
                     FROM recon_rec s WHERE s.side = 'R' AND s.kind = 'sale'
                      AND EXISTS (SELECT 1 FROM recon_claim x WHERE x.gtin = s.gtin AND x.serial = s.serial)
                     ORDER BY s.gtin, s.serial, s.occurred_at, s.id) s
                 ON s.gtin = c.gtin AND s.serial = c.serial
               WHERE c.occurred_at < s.occurred_at"""
        )
        self._found(
            f"""SELECT 'claim_outside_warranty', true, c.gtin, c.serial, c.customer_id, 'claim_outside_warranty:' || c.id,
                      jsonb_build_object('warranty_months', w.months, 'warranty_from', w.source,
                                         'warranty_ended', (s.occurred_at + make_interval(months => w.months))::date),
                      -- the registration that states the period is evidence too
                      CASE WHEN w.source = 'registration' THEN ARRAY[c.id, s.id, g.id] ELSE ARRAY[c.id, s.id] END,
                      CASE WHEN w.source = 'registration' THEN ARRAY['claim', 'sale', 'registration']
                           ELSE ARRAY['claim', 'sale'] END
               FROM recon_claim c
               JOIN (SELECT DISTINCT ON (x.id) x.id AS claim_id, s.id, s.occurred_at
                     FROM recon_claim x JOIN recon_rec s
                       ON s.side = 'R' AND s.kind = 'sale' AND s.gtin = x.gtin AND s.serial = x.serial
                      AND s.occurred_at <= x.occurred_at
                     ORDER BY x.id, s.occurred_at DESC, s.id DESC) s ON s.claim_id = c.id
               LEFT JOIN (SELECT DISTINCT ON (g.gtin, g.serial) g.id, g.gtin, g.serial,
                                 (g.warranty_months)::int AS months
                          FROM recon_rec g WHERE g.side = 'M' AND g.kind = 'warranty_registration'
                           AND EXISTS (SELECT 1 FROM recon_claim x WHERE x.gtin = g.gtin AND x.serial = g.serial)
                          ORDER BY g.gtin, g.serial, g.occurred_at DESC, g.id DESC) g
                 ON g.gtin = c.gtin AND g.serial = c.serial
               LEFT JOIN {WarrantyTerms._meta.db_table} t ON t.manufacturer_id = %s AND t.gtin = c.gtin
               CROSS JOIN LATERAL (
                   SELECT coalesce(g.months, t.warranty_months, %s) AS months,
                          CASE WHEN g.months IS NOT NULL THEN 'registration'
                               WHEN t.warranty_months IS NOT NULL THEN 'product model'
                               ELSE 'default' END AS source) w
               WHERE c.occurred_at > s.occurred_at + make_interval(months => w.months)""",
            [self.m.pk, settings.RECON_DEFAULT_WARRANTY_MONTHS],
        )
        self._found(
            """SELECT 'repeated_claims', true, c.gtin, c.serial, min(c.customer_id::text)::uuid,
                      'repeated_claims:' || c.gtin || ':' || c.serial, jsonb_build_object('claims', count(*)),
                      array_agg(c.id ORDER BY c.id), array_fill('claim'::text, ARRAY[count(*)::int])
               FROM recon_rest c WHERE c.kind = 'warranty_claim'
               GROUP BY c.gtin, c.serial HAVING count(*) >= 2"""
        )

    def service(self):
        # Request ↔ visit ↔ completion links, by unit and reference.
        self.counts["links_created"] += self.sql(
            """INSERT INTO reconciliation_recordlink (kind, from_record_id, to_record_id, created_at)
               SELECT DISTINCT CASE WHEN a.kind = 'service_request' AND b.kind = 'service_visit' THEN 'request_visit'
                                    WHEN a.kind = 'service_visit' THEN 'visit_completion'
                                    ELSE 'request_completion' END, a.id, b.id, %s
               FROM recon_rest a JOIN recon_rest b
                 ON b.gtin = a.gtin AND b.serial = a.serial
                AND coalesce(b.reference, '') = coalesce(a.reference, '')
                AND b.occurred_at >= a.occurred_at AND b.id <> a.id
               WHERE (a.kind, b.kind) IN (('service_request', 'service_visit'), ('service_visit', 'service_completion'),
                                          ('service_request', 'service_completion'))
                 AND a.kind IN ('service_request', 'service_visit')
                 AND b.kind IN ('service_visit', 'service_completion')
               ON CONFLICT (kind, from_record_id, to_record_id) DO NOTHING""",
            [self.now],
        )
        sla_cutoff = self.now - timedelta(days=settings.RECON_SERVICE_SLA_DAYS)
        # Records are never changed: a party updates a service case by sending a new request
        # with the case's reference. A case, per party: its first request, and the status of
        # its latest.
        self.sql(
            """CREATE TEMP TABLE recon_case ON COMMIT DROP AS
               SELECT DISTINCT ON (side, gtin, serial, coalesce(reference, ''))
                      side, gtin, serial, coalesce(reference, '') AS reference, customer_id,
                      id AS last_id, occurred_at AS last_at, coalesce(status, 'open') AS status,
                      first_value(id) OVER w AS first_id, first_value(occurred_at) OVER w AS first_at
               FROM recon_rest WHERE kind = 'service_request'
               WINDOW w AS (PARTITION BY side, gtin, serial, coalesce(reference, '') ORDER BY occurred_at, id)
               ORDER BY side, gtin, serial, coalesce(reference, ''), occurred_at DESC, id DESC"""
        )
        # Completed on one side, and on the other still open past the SLA since the completion,
        # or the unit returned within the SLA after it (the service did not hold).
        self._found(
            """SELECT 'service_status_conflict', true, q.gtin, q.serial, q.customer_id,
                      'service_conflict:' || q.last_id || ':' || k.id,
                      jsonb_build_object('other_side', 'open', 'request_status', q.status,
                                         'reference', nullif(q.reference, '')),
                      ARRAY[q.last_id, k.id], ARRAY['request', 'completion']
               FROM recon_case q JOIN recon_rest k
                 ON k.gtin = q.gtin AND k.serial = q.serial AND k.kind = 'service_completion'
                AND k.side <> q.side AND coalesce(k.reference, '') = q.reference
                AND k.occurred_at >= q.last_at AND k.occurred_at <= %s
               WHERE q.status IN ('open', 'in_progress')""",
            [sla_cutoff],
        )
        self._found(
            """SELECT 'service_status_conflict', true, k.gtin, k.serial, coalesce(x.customer_id, k.customer_id),
                      'service_returned:' || x.id || ':' || k.id,
                      jsonb_build_object('other_side', 'returned', 'reference', k.reference),
                      ARRAY[k.id, x.id], ARRAY['completion', 'return']
               FROM recon_rest k JOIN recon_rest x
                 ON x.kind = 'return' AND x.side <> k.side AND x.gtin = k.gtin AND x.serial = k.serial
                AND x.occurred_at >= k.occurred_at
                AND x.occurred_at <= k.occurred_at + make_interval(days => %s)
               WHERE k.kind = 'service_completion'""",
            [settings.RECON_SERVICE_SLA_DAYS],
        )
        self._found(
            """SELECT 'service_overdue', true, q.gtin, q.serial, q.customer_id, 'service_overdue:' || q.first_id,
                      jsonb_build_object('sla_days', %s::int, 'reference', nullif(q.reference, '')),
                      ARRAY[q.first_id], ARRAY['request']
               FROM recon_case q
               WHERE q.status IN ('open', 'in_progress') AND q.first_at <= %s
                 AND NOT EXISTS (SELECT 1 FROM recon_rest v WHERE v.kind IN ('service_visit', 'service_completion')
                                 AND v.gtin = q.gtin AND v.serial = q.serial AND v.occurred_at >= q.first_at
                                 AND coalesce(v.reference, '') = q.reference)""",
            [settings.RECON_SERVICE_SLA_DAYS, sla_cutoff],
        )

    def loyalty(self):
        self._found(
            """SELECT 'accrual_not_reversed', true, a.gtin, a.serial, a.customer_id, 'not_reversed:' || a.id,
                      jsonb_build_object('points', (a.points)::int, 'sale_reference', a.sale_reference),
                      ARRAY[a.id, x.id], ARRAY['accrual', 'return']
               FROM recon_rest a JOIN recon_rest x
                 ON x.side = a.side AND x.kind = 'return' AND x.sale_reference = a.sale_reference
               WHERE a.kind = 'loyalty_accrual' AND (a.points)::int > 0
                 AND coalesce(a.sale_reference, '') <> ''
                 AND NOT EXISTS (SELECT 1 FROM recon_rest v WHERE v.side = a.side AND v.kind = 'loyalty_accrual'
                                 AND v.sale_reference = a.sale_reference
                                 AND (v.points)::int < 0)"""
        )
        # The manufacturer's programme credits a unit's purchase; the retailer takes the unit
        # back: the manufacturer's points stand unless it reversed them on that unit.
        self._found(
            """SELECT 'accrual_not_reversed', true, a.gtin, a.serial, a.customer_id, 'not_reversed:' || a.id,
                      jsonb_build_object('points', (a.points)::int), ARRAY[a.id, x.id], ARRAY['accrual', 'return']
               FROM recon_rest a JOIN recon_rest x
                 ON x.side = 'R' AND x.kind = 'return' AND x.gtin = a.gtin AND x.serial = a.serial
                AND x.occurred_at >= a.occurred_at
               WHERE a.side = 'M' AND a.kind = 'loyalty_accrual' AND a.gtin <> ''
                 AND coalesce(a.reason, 'purchase') = 'purchase' AND (a.points)::int > 0
                 AND NOT EXISTS (SELECT 1 FROM recon_rest v WHERE v.side = 'M' AND v.kind = 'loyalty_accrual'
                                 AND v.gtin = a.gtin AND v.serial = a.serial AND (v.points)::int < 0)"""
        )
        # A purchase credited by both programmes is a finding only where the terms in force say
        # one programme credits it (a change of terms makes the next run a full one).
        if self.purchase_points == AgreementVersion.PurchasePoints.ONE:
            self._double_credit()
        # A balance over part of a ledger is wrong: only the sides whose accruals and
        # redemptions the other party both sees.
        sides = self._whole_ledgers()
        if not sides:
            return
        self._found(
            """SELECT 'redemption_exceeds_balance', true, '', '', t.customer_id, 'overdrawn:' || t.id,
                      jsonb_build_object('balance_after', t.balance), ARRAY[t.id], ARRAY['redemption']
               FROM (SELECT id, kind, customer_id,
                            sum(CASE WHEN kind = 'loyalty_redemption' THEN -(points)::int
                                     ELSE points::int END)
                              OVER (PARTITION BY side, customer_id ORDER BY occurred_at, id) AS balance
                     FROM recon_rest WHERE kind IN ('loyalty_accrual', 'loyalty_redemption')
                       AND customer_id IS NOT NULL AND side = ANY(%s) {ledgers}) t
               WHERE t.kind = 'loyalty_redemption' AND t.balance < 0""".format(
                # a customer's whole ledger, or none of it: records on re-checked units alone
                # would be a partial ledger
                ledgers=""
                if self.full
                else "AND customer_id IN (SELECT customer_id FROM recon_customers)"
            ),
            [sides],
        )

    def _whole_ledgers(self):
        ledger = {"loyalty_accrual", "loyalty_redemption"}
        sides = []
        for side, reader, owner in (("R", self.m, self.r), ("M", self.r, self.m)):
            grants = visible_records(partner=reader, at=self.now).grants
            if ledger <= {g.kind for g in grants if g.counterpart_id == owner.pk}:
                sides.append(side)
        return sides

    def _double_credit(self):
        self._found(
            """SELECT 'double_credit', true, a.gtin, a.serial, a.customer_id, 'double_credit:' || a.id || ':' || b.id,
                      jsonb_build_object('retailer_points', (a.points)::int,
                                         'manufacturer_points', (b.points)::int),
                      ARRAY[a.id, b.id], ARRAY['retailer accrual', 'manufacturer accrual']
               FROM recon_rest a JOIN recon_rest b
                 ON b.side = 'M' AND b.kind = 'loyalty_accrual' AND b.gtin = a.gtin AND b.serial = a.serial
                AND coalesce(b.reason, 'purchase') = 'purchase' AND (b.points)::int > 0
               WHERE a.side = 'R' AND a.kind = 'loyalty_accrual' AND a.gtin <> ''
                 AND coalesce(a.reason, 'purchase') = 'purchase' AND (a.points)::int > 0"""
        )

    def maker_only(self):
        """Registrations and claims of the manufacturer with no sale that it may see from any
        retailer: the manufacturer's own records, in its own queue."""
        if self.full:
            self.sql("SET LOCAL enable_nestloop = on")  # reads the records table again
        own_kinds = ["warranty_registration", "warranty_claim"]
        sql_own, params_own = self._restrict(
            self._evidence(partner=self.m).filter(submitted_by_id=self.m.pk, kind__in=own_kinds),
            submitted_by=self.m.pk,
            kinds=own_kinds,
        )
        # The sales of this retailer that the manufacturer may see are in recon_rec already;
        # only the other partners' are read here.
        sql_sale, params_sale = self._restrict(
            self._evidence(partner=self.m).filter(kind="sale").exclude(submitted_by_id=self.r.pk),
            kinds=["sale"],
            other_than=self.r.pk,
        )
        columns = ", ".join(REC_COLUMNS)
        self.sql(
            f"CREATE TEMP TABLE recon_own ON COMMIT DROP AS SELECT * FROM ({sql_own}) o ({columns})",
            params_own,
        )
        self.sql(
            f"CREATE TEMP TABLE recon_other_sale ON COMMIT DROP AS SELECT DISTINCT gtin, serial, customer_id FROM ({sql_sale}) s ({columns})",
            params_sale,
        )
        self.sql("CREATE INDEX ON recon_other_sale (gtin, serial)")
        self.sql("ANALYZE recon_other_sale")
        grace_cutoff = self.now - timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS)
        self._found(
            """SELECT CASE kind WHEN 'warranty_claim' THEN 'claim_without_sale' ELSE 'registration_without_sale' END,
                      false, g.gtin, g.serial, g.customer_id,
                      CASE kind WHEN 'warranty_claim' THEN 'claim_without_sale:' ELSE 'no_sale:' END || g.id,
                      '{{}}'::jsonb, ARRAY[g.id],
                      ARRAY[CASE kind WHEN 'warranty_claim' THEN 'claim' ELSE 'registration' END]
               FROM recon_own g
               WHERE (g.kind = 'warranty_claim' OR g.occurred_at <= %s)
                 AND NOT EXISTS (SELECT 1 FROM recon_rec s WHERE s.side = 'R' AND s.kind = 'sale'
                                 AND s.gtin = g.gtin AND s.serial = g.serial AND {same_r})
                 AND NOT EXISTS (SELECT 1 FROM recon_other_sale a WHERE a.gtin = g.gtin AND a.serial = g.serial
                                 AND {same_other})""".format(
                same_r=SALE_REGISTRATION_CUSTOMER,
                same_other=SAME_CUSTOMER.format(a="a", b="g"),
            ),
            [grace_cutoff],
        )

    # --- results ---------------------------------------------------------------------------------

    def upsert(self):
        m, r = self.m.pk, self.r.pk
        # Without these the resolve step below plans a nested loop over two large sets.
        self.sql("CREATE INDEX ON recon_found (key)")
        self.sql("ANALYZE recon_found")
        severity_cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SEVERITY.items())
        # One statement opens the new findings with their evidence (a new discrepancy has no
        # evidence yet: plain inserts, in the order of the keys). No "opened" note per finding:
        # the history shows the discrepancy's opened_at as its first entry.
        self.sql(
            'CREATE TEMP TABLE recon_opened (id uuid, key text COLLATE "C", pair boolean) ON COMMIT DROP'
        )

        def open_new(pair, retailer, new):
            # The findings of one side of the unique key, each key once, in the key's order.
            return f"""INSERT INTO reconciliation_discrepancy
                    (id, manufacturer_id, retailer_id, kind, severity, key, gtin, serial, customer_id, detail,
                     status, opened_at, updated_at, opened_by_run_id)
                  SELECT gen_random_uuid(), %s, {retailer}, f.kind,
                         CASE f.kind {severity_cases} ELSE 'medium' END, f.key, f.gtin, f.serial, f.customer_id,
                         f.detail, 'open', %s, %s, %s
                  FROM (SELECT DISTINCT ON (key) * FROM recon_found WHERE pair = {pair} ORDER BY key) f
                  {new}
                  RETURNING id, key, {pair} AS pair"""

        # Only this pair's runs open its findings, one run at a time (the lock): the keys not
        # there yet, plain inserts (the unique key still stops a duplicate). The manufacturer's
        # own findings are shared by its pairs, whose runs may open one at the same time.
        pair_new = """WHERE NOT EXISTS (SELECT 1 FROM reconciliation_discrepancy d
                                      WHERE d.manufacturer_id = %s AND d.retailer_id = %s AND d.key = f.key)
                      ORDER BY f.key"""
        own_new = "ORDER BY f.key ON CONFLICT (manufacturer_id, retailer_id, key) DO NOTHING"
        values = [self.now, self.now, self.run.pk]
        self.sql(
            f"""WITH opened_pair AS ({open_new("true", "%s::uuid", pair_new)}),
                opened_own AS ({open_new("false", "NULL::uuid", own_new)}),
                opened AS (SELECT * FROM opened_pair UNION ALL SELECT * FROM opened_own),
                kept AS (INSERT INTO recon_opened SELECT * FROM opened),
                evidence AS (
                  INSERT INTO reconciliation_discrepancyevidence (discrepancy_id, record_id, role)
                  SELECT DISTINCT ON (o.id, e.record_id) o.id, e.record_id, e.role
                  FROM opened o JOIN recon_found f ON f.key = o.key AND f.pair = o.pair
                  CROSS JOIN LATERAL unnest(f.evidence, f.roles) AS e(record_id, role)
                  ORDER BY o.id, e.record_id)
                SELECT id FROM opened""",
            [m, r, *values, m, r, m, *values],
        )
        opened = [row[0] for row in self.cursor.fetchall()]
        self.sql("CREATE INDEX ON recon_opened (key)")
        self.sql("ANALYZE recon_opened")
        # Findings already open (or resolved, or dismissed) may have new evidence (another
        # claim on the unit): two statements, so that each joins on the whole unique key.
        for pair, retailer in ((True, r), (False, None)):
            self.sql(
                f"""INSERT INTO reconciliation_discrepancyevidence (discrepancy_id, record_id, role)
                    SELECT d.id, e.record_id, e.role
                    FROM recon_found f
                    CROSS JOIN LATERAL unnest(f.evidence, f.roles) AS e(record_id, role)
                    JOIN reconciliation_discrepancy d
                      ON d.manufacturer_id = %s AND d.retailer_id {"= %s" if pair else "IS NULL"}
                     AND d.key = f.key
                    WHERE f.pair = %s
                      AND NOT EXISTS (SELECT 1 FROM recon_opened o WHERE o.key = f.key AND o.pair = f.pair)
                    ON CONFLICT (discrepancy_id, record_id) DO NOTHING""",
                [m, retailer, pair] if pair else [m, pair],
            )
        # What no longer holds on the re-evaluated units and customers resolves itself; an
        # incremental run looks only at the findings of its units (and ledger findings of its
        # customers), through the unit and customer indexes.
        scope, params = "", []
        if not self.full:
            scope = """AND d.id IN (
                SELECT x.id FROM recon_unit u JOIN reconciliation_discrepancy x
                  ON x.gtin = u.gtin AND x.serial = u.serial
                UNION ALL
                SELECT x.id FROM recon_customers c JOIN reconciliation_discrepancy x
                  ON x.customer_id = c.customer_id AND x.kind = ANY(%s))"""
            params = [list(CUSTOMER_FINDINGS)]
        else:
            self.sql(
                "ANALYZE reconciliation_discrepancy (manufacturer_id, retailer_id, status, key)"
            )
        self.cursor.execute(
            f"""UPDATE reconciliation_discrepancy d SET status = 'resolved', updated_at = %s
                WHERE d.manufacturer_id = %s AND (d.retailer_id = %s OR d.retailer_id IS NULL) AND d.status = 'open'
                  AND NOT EXISTS (SELECT 1 FROM recon_found f WHERE f.key = d.key
                                  AND (CASE WHEN f.pair THEN %s::uuid END) IS NOT DISTINCT FROM d.retailer_id)
                  {scope}
                RETURNING d.id""",
            [self.now, m, r, r, *params],
        )
        resolved = [row[0] for row in self.cursor.fetchall()]
        if resolved:
            self.sql(
                """INSERT INTO reconciliation_discrepancynote (discrepancy_id, action, text, created_at)
                   SELECT unnest(%s::uuid[]), 'auto_resolved', 'The records now agree.', %s""",
                [resolved, self.now],
            )
        self.counts.update(
            found=self.count("recon_found"),
            opened=len(opened),
            auto_resolved=len(resolved),
            opened_ids=[str(i) for i in opened],
            resolved_ids=[str(i) for i in resolved],
        )

    def forget_erased(self):
        """No finding of the pair (open, resolved or dismissed; the manufacturer's own too)
        keeps naming an erased customer: its customer is cleared, after the resolve step above
        has used it. An incremental run looks at the customers erased since its last run (the
        findings' customer index); a full run at every erased customer. Keys and details name
        records, units and figures, never a customer. A finding's customer is not shown to
        either party, so ``updated_at`` stays and nothing is announced."""
        if self.full:
            self._erased_since()
        self.counts["erased_forgotten"] = self.sql(
            f"""UPDATE {Discrepancy._meta.db_table} d SET customer_id = NULL
                FROM recon_erased e
                WHERE d.customer_id = e.customer_id
                  AND d.manufacturer_id = %s AND (d.retailer_id = %s OR d.retailer_id IS NULL)""",
            [self.m.pk, self.r.pk],
        )

    def watermark(self):
        self.state.record_watermark = max(self.state.record_watermark, self.upto)
        self.state.xact_horizon = self.horizon
        self.state.time_watermark = self.now
        self.state.agreement = self.agreement
        self.state.updated_at = self.now
        self.state.save(
            update_fields=[
                "record_watermark",
                "xact_horizon",
                "time_watermark",
                "agreement",
                "updated_at",
            ]
        )
