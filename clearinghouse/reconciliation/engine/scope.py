"""What a run looks at. Incremental: the records that arrived since the pair's watermark, the
units and customers they touch, whose consent changed, who were erased, whose deadlines passed,
as temporary tables of candidate ids (all of the pair's records in a full run). Then the records
each party may see of the other's, through the one decision (``Visible.compile_sql``), and at
the end the watermark the next run starts from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from django.conf import settings

from clearinghouse.records.visibility import Visible, visible_records
from consent.models import ConsentGrant, Customer
from partners.models import Partner

from ..models import Discrepancy

if TYPE_CHECKING:
    from .run import Run

RECORD_OVERLAP = 5000
# Consent changes are found by their timestamps, taken before their transactions commit: a change
# dated up to this long before the last run started is looked at again.
CHANGE_OVERLAP = timedelta(minutes=5)
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


def candidates(run: Run) -> None:
    """The run's working tables: ``recon_found`` (the rules' findings) and, for an incremental
    run, the units (``recon_unit``) and ledgers (``recon_customers``) to re-check and their
    records' ids (``recon_ids``). A full run looks at every record of the pair."""
    # The highest id, and the oldest transaction still open, in one snapshot.
    run.cursor.execute(
        f"""SELECT coalesce(max(id), 0), pg_snapshot_xmin(pg_current_snapshot())::text::bigint
            FROM {TABLE} WHERE submitted_by_id IN (%s, %s)""",
        [run.m.pk, run.r.pk],
    )
    run.upto, run.horizon = run.cursor.fetchone()
    run.row.from_record = 0 if run.full else max(0, run.state.record_watermark - RECORD_OVERLAP)
    # ON COMMIT DROP cleans up; this covers two runs inside one outer transaction.
    run.sql(f"DROP TABLE IF EXISTS {', '.join(TEMP_TABLES)}")
    run.sql("CREATE TEMP TABLE recon_units (gtin varchar(14), serial varchar(64)) ON COMMIT DROP")
    run.sql("CREATE TEMP TABLE recon_customers (customer_id uuid) ON COMMIT DROP")
    # Byte-wise text, like the discrepancy columns it becomes (sorted and compared by key).
    run.sql("""CREATE TEMP TABLE recon_found (kind text, pair boolean, gtin text COLLATE "C",
                serial text COLLATE "C", customer_id uuid, key text COLLATE "C", detail jsonb,
                evidence bigint[], roles text[]) ON COMMIT DROP""")
    if run.full:
        return
    parties = [run.m.pk, run.r.pk]
    # What arrived: an id range (the primary key), never a scan of the table. Of the overlap
    # below the watermark, only what transactions open at the last run wrote (age() counts
    # back from this transaction's id; a frozen row is the oldest of all).
    late, late_params = "true", []
    if run.state.xact_horizon is not None:
        late = "age(xmin) <= pg_current_xact_id()::text::bigint - %s"
        late_params = [run.state.xact_horizon]
    run.sql(
        f"""CREATE TEMP TABLE recon_new ON COMMIT DROP AS
            SELECT kind, gtin, serial, customer_id FROM {TABLE}
            WHERE id > %s AND id <= %s AND submitted_by_id = ANY(%s) AND (id > %s OR {late})""",
        [
            run.row.from_record,
            run.upto,
            parties,
            run.state.record_watermark,
            *late_params,
        ],
    )
    run.sql("INSERT INTO recon_units SELECT gtin, serial FROM recon_new WHERE gtin <> ''")
    # Only the ledger rules look at a customer's records across units.
    run.sql(
        """INSERT INTO recon_customers SELECT DISTINCT customer_id FROM recon_new
           WHERE customer_id IS NOT NULL AND kind = ANY(%s)""",
        [list(CUSTOMER_KINDS)],
    )
    since = run.state.time_watermark or run.now
    # Customers whose consent to either party began, was withdrawn or ran out since the last
    # run (by the grant indexes on grantee and time): all their records of the pair.
    changed = since - CHANGE_OVERLAP
    run.sql(
        f"""CREATE TEMP TABLE recon_consented ON COMMIT DROP AS
            SELECT DISTINCT customer_id FROM {ConsentGrant._meta.db_table}
            WHERE grantee_id = ANY(%s) AND (granted_at > %s OR revoked_at > %s
                  OR (expires_at > %s AND expires_at <= %s))""",
        [parties, changed, changed, changed, run.now],
    )
    run.counts["consents_changed"] = run.count("recon_consented")
    run.sql(
        f"""INSERT INTO recon_units SELECT r.gtin, r.serial FROM recon_consented c
            JOIN {TABLE} r ON r.customer_id = c.customer_id
            WHERE r.submitted_by_id = ANY(%s) AND r.gtin <> ''""",
        [parties],
    )
    # Customers erased since the last run (the partial index on erasure time), whether or
    # not they consented to either party: the manufacturer's own findings need no consent.
    erased_since(run, changed)
    run.counts["customers_erased"] = run.count("recon_erased")
    # An erasure clears the customer from the records: the units of the pair's open
    # findings about such a customer are found by the findings (the customer index).
    run.sql(
        f"""INSERT INTO recon_units SELECT d.gtin, d.serial
            FROM (SELECT customer_id FROM recon_consented
                  UNION SELECT customer_id FROM recon_erased) c
            JOIN {Discrepancy._meta.db_table} d ON d.customer_id = c.customer_id
            WHERE d.manufacturer_id = %s AND (d.retailer_id = %s OR d.retailer_id IS NULL)
              AND d.status = 'open' AND d.gtin <> ''""",
        [run.m.pk, run.r.pk],
    )
    # Their ledger findings too (a ledger finding names no unit).
    run.sql(
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
        run.sql(
            f"""INSERT INTO recon_units SELECT gtin, serial FROM {TABLE}
                WHERE submitted_by_id = ANY(%s) AND kind = ANY(%s) AND occurred_at > %s
                  AND occurred_at <= %s AND gtin <> ''""",
            [parties, kinds, since - window, run.now - window],
        )
    run.sql(
        "CREATE TEMP TABLE recon_unit ON COMMIT DROP AS SELECT DISTINCT gtin, serial FROM recon_units"
    )
    run.counts["units_rechecked"] = run.count("recon_unit")
    run.sql("CREATE INDEX ON recon_unit (gtin, serial)")
    run.sql("ANALYZE recon_unit")
    run.sql("ANALYZE recon_customers")
    # The records to look at, by the unit and customer indexes of the records table: every
    # record on a re-checked unit, and the ledger records of a re-checked customer.
    # (OFFSET 0 keeps each lookup a parameterised index scan, never a scan of the table.)
    run.sql(
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
    # The rules' lookups of these ids (``restrict``) are semi-joins. With the records
    # table's statistics stale (just after a large ingest, before autovacuum analyses it)
    # the planner expects a handful of records and loops over them, scanning recon_ids for
    # each: 100+ s on 24,000 units. With an index, the same plan is a probe per record.
    run.sql("CREATE INDEX ON recon_ids (id)")
    run.sql("ANALYZE recon_ids")


def erased_since(run: Run, since: datetime | None = None) -> None:
    """recon_erased: the customers erased after ``since`` (every erased customer without
    it), by the partial index on erasure time, never a scan of the customers."""
    erased, params = "erased_at IS NOT NULL", []
    if since is not None:
        erased, params = "erased_at > %s", [since]
    run.sql(
        f"""CREATE TEMP TABLE recon_erased ON COMMIT DROP AS
            SELECT id AS customer_id FROM {Customer._meta.db_table} WHERE {erased}""",
        params,
    )
    run.sql("ANALYZE recon_erased")


def evidence(run: Run, *, partner: Partner) -> Visible:
    """What ``partner`` may see now (the one decision), less tombstones: an erased
    customer's record, its customer and payload gone, is evidence of nothing (a partner's own
    tombstones stay visible to it, and a registration with no payload and no customer would
    be a registration without a sale)."""
    return visible_records(partner=partner, at=run.now).filter(tombstoned_at__isnull=True)


def restrict(
    run: Run,
    visible: Visible,
    *,
    submitted_by: UUID | None = None,
    other_than: UUID | None = None,
    kinds: Sequence[str] | None = None,
) -> tuple[str, list]:
    """The SQL of ``visible`` (the decision's one escape, ``compile_sql``) limited to the
    records this run looks at (all in a full run). The filters repeat the caller's, so that
    only the matching candidates are looked up."""
    if run.full:
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


def shared_records(run: Run) -> None:
    """recon_rec: the retailer's records the manufacturer may see (side R) and the
    manufacturer's records the retailer may see (side M), through the one decision."""
    sql_m, params_m = restrict(
        run,
        evidence(run, partner=run.m).filter(submitted_by_id=run.r.pk),
        submitted_by=run.r.pk,
    )
    sql_r, params_r = restrict(
        run,
        evidence(run, partner=run.r).filter(submitted_by_id=run.m.pk),
        submitted_by=run.m.pk,
    )
    columns = ", ".join(REC_COLUMNS)
    # Narrow rows: the payload fields the rules read, as text (a 1M-record pair's table is a
    # quarter of the size with the whole payload, and every rule scans it).
    narrow = ", ".join(
        [c for c in REC_COLUMNS if c != "payload"]
        + [f"payload->>'{field}' AS {field}" for field in PAYLOAD_FIELDS]
    )
    run.sql(
        f"""CREATE TEMP TABLE recon_rec ON COMMIT DROP AS
            SELECT 'R'::text AS side, {narrow} FROM ({sql_m}) r_side ({columns})
            UNION ALL
            SELECT 'M'::text AS side, {narrow} FROM ({sql_r}) m_side ({columns})""",
        params_m + params_r,
    )
    # No index: every rule is a hash join over whole sets.
    run.sql("ANALYZE recon_rec (side, kind, gtin, serial, customer_id)")
    # Sales and registrations are nearly all of a pair's records: the claim, service and
    # loyalty rules read the rest, copied once, rather than scan them all again each.
    run.sql(
        """CREATE TEMP TABLE recon_rest ON COMMIT DROP AS
           SELECT * FROM recon_rec WHERE kind NOT IN ('sale', 'warranty_registration')"""
    )
    run.sql("ANALYZE recon_rest (side, kind, gtin, serial, customer_id)")
    run.counts["records_considered"] = run.count("recon_rec")


def watermark(run: Run) -> None:
    """Where the next run of the pair starts: the highest record id and the oldest open
    transaction this run saw, its moment, and the agreement (and terms) it ran under."""
    run.state.record_watermark = max(run.state.record_watermark, run.upto)
    run.state.xact_horizon = run.horizon
    run.state.time_watermark = run.now
    run.state.agreement = run.agreement
    run.state.updated_at = run.now
    run.state.save(
        update_fields=[
            "record_watermark",
            "xact_horizon",
            "time_watermark",
            "agreement",
            "updated_at",
        ]
    )
