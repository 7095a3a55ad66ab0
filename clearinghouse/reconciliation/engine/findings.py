"""A run's findings: each rule adds rows to ``recon_found`` (``found``); ``upsert`` opens the
new ones with their evidence, adds new evidence to those already there, and resolves what no
longer holds; ``forget_erased`` clears erased customers from the pair's findings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..models import Discrepancy
from .scope import CUSTOMER_FINDINGS, erased_since

if TYPE_CHECKING:
    from .run import Run

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


def found(run: Run, query: str, params: Sequence = ()) -> None:
    """Add the rows of ``query`` (a SELECT of ``recon_found``'s columns, in their order) to the
    run's findings."""
    run.sql(
        f"INSERT INTO recon_found (kind, pair, gtin, serial, customer_id, key, detail, evidence, roles) {query}",
        params,
    )


def upsert(run: Run) -> None:
    m, r = run.m.pk, run.r.pk
    # Without these the resolve step below plans a nested loop over two large sets.
    run.sql("CREATE INDEX ON recon_found (key)")
    run.sql("ANALYZE recon_found")
    severity_cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SEVERITY.items())
    # One statement opens the new findings with their evidence (a new discrepancy has no
    # evidence yet: plain inserts, in the order of the keys). No "opened" note per finding:
    # the history shows the discrepancy's opened_at as its first entry.
    run.sql(
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
    values = [run.now, run.now, run.row.pk]
    run.sql(
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
    opened = [row[0] for row in run.cursor.fetchall()]
    run.sql("CREATE INDEX ON recon_opened (key)")
    run.sql("ANALYZE recon_opened")
    # Findings already open (or resolved, or dismissed) may have new evidence (another
    # claim on the unit): two statements, so that each joins on the whole unique key.
    for pair, retailer in ((True, r), (False, None)):
        run.sql(
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
    if not run.full:
        scope = """AND d.id IN (
            SELECT x.id FROM recon_unit u JOIN reconciliation_discrepancy x
              ON x.gtin = u.gtin AND x.serial = u.serial
            UNION ALL
            SELECT x.id FROM recon_customers c JOIN reconciliation_discrepancy x
              ON x.customer_id = c.customer_id AND x.kind = ANY(%s))"""
        params = [list(CUSTOMER_FINDINGS)]
    else:
        run.sql("ANALYZE reconciliation_discrepancy (manufacturer_id, retailer_id, status, key)")
    run.cursor.execute(
        f"""UPDATE reconciliation_discrepancy d SET status = 'resolved', updated_at = %s
            WHERE d.manufacturer_id = %s AND (d.retailer_id = %s OR d.retailer_id IS NULL) AND d.status = 'open'
              AND NOT EXISTS (SELECT 1 FROM recon_found f WHERE f.key = d.key
                              AND (CASE WHEN f.pair THEN %s::uuid END) IS NOT DISTINCT FROM d.retailer_id)
              {scope}
            RETURNING d.id""",
        [run.now, m, r, r, *params],
    )
    resolved = [row[0] for row in run.cursor.fetchall()]
    if resolved:
        run.sql(
            """INSERT INTO reconciliation_discrepancynote (discrepancy_id, action, text, created_at)
               SELECT unnest(%s::uuid[]), 'auto_resolved', 'The records now agree.', %s""",
            [resolved, run.now],
        )
    run.counts.update(
        found=run.count("recon_found"),
        opened=len(opened),
        auto_resolved=len(resolved),
        opened_ids=[str(i) for i in opened],
        resolved_ids=[str(i) for i in resolved],
    )


def forget_erased(run: Run) -> None:
    """No finding of the pair (open, resolved or dismissed; the manufacturer's own too)
    keeps naming an erased customer: its customer is cleared, after the resolve step above
    has used it. An incremental run looks at the customers erased since its last run (the
    findings' customer index); a full run at every erased customer. Keys and details name
    records, units and figures, never a customer. A finding's customer is not shown to
    either party, so ``updated_at`` stays and nothing is announced."""
    if run.full:
        erased_since(run)
    run.counts["erased_forgotten"] = run.sql(
        f"""UPDATE {Discrepancy._meta.db_table} d SET customer_id = NULL
            FROM recon_erased e
            WHERE d.customer_id = e.customer_id
              AND d.manufacturer_id = %s AND (d.retailer_id = %s OR d.retailer_id IS NULL)""",
        [run.m.pk, run.r.pk],
    )
