"""Loyalty rules: accruals for a returned sale that were never reversed, a purchase credited by
both programmes, and redemptions beyond a customer's balance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearinghouse.records.visibility import visible_records
from partners.models import AgreementVersion

from .findings import found

if TYPE_CHECKING:
    from .run import Run


def points(run: Run) -> None:
    found(
        run,
        """SELECT 'accrual_not_reversed', true, a.gtin, a.serial, a.customer_id, 'not_reversed:' || a.id,
                  jsonb_build_object('points', (a.points)::int, 'sale_reference', a.sale_reference),
                  ARRAY[a.id, x.id], ARRAY['accrual', 'return']
           FROM recon_rest a JOIN recon_rest x
             ON x.side = a.side AND x.kind = 'return' AND x.sale_reference = a.sale_reference
           WHERE a.kind = 'loyalty_accrual' AND (a.points)::int > 0
             AND coalesce(a.sale_reference, '') <> ''
             AND NOT EXISTS (SELECT 1 FROM recon_rest v WHERE v.side = a.side AND v.kind = 'loyalty_accrual'
                             AND v.sale_reference = a.sale_reference
                             AND (v.points)::int < 0)""",
    )
    # The manufacturer's programme credits a unit's purchase; the retailer takes the unit
    # back: the manufacturer's points stand unless it reversed them on that unit.
    found(
        run,
        """SELECT 'accrual_not_reversed', true, a.gtin, a.serial, a.customer_id, 'not_reversed:' || a.id,
                  jsonb_build_object('points', (a.points)::int), ARRAY[a.id, x.id], ARRAY['accrual', 'return']
           FROM recon_rest a JOIN recon_rest x
             ON x.side = 'R' AND x.kind = 'return' AND x.gtin = a.gtin AND x.serial = a.serial
            AND x.occurred_at >= a.occurred_at
           WHERE a.side = 'M' AND a.kind = 'loyalty_accrual' AND a.gtin <> ''
             AND coalesce(a.reason, 'purchase') = 'purchase' AND (a.points)::int > 0
             AND NOT EXISTS (SELECT 1 FROM recon_rest v WHERE v.side = 'M' AND v.kind = 'loyalty_accrual'
                             AND v.gtin = a.gtin AND v.serial = a.serial AND (v.points)::int < 0)""",
    )
    # A purchase credited by both programmes is a finding only where the terms in force say
    # one programme credits it (a change of terms makes the next run a full one).
    if run.purchase_points == AgreementVersion.PurchasePoints.ONE:
        _double_credit(run)
    # A balance over part of a ledger is wrong: only the sides whose accruals and
    # redemptions the other party both sees.
    sides = _whole_ledgers(run)
    if not sides:
        return
    found(
        run,
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
            if run.full
            else "AND customer_id IN (SELECT customer_id FROM recon_customers)"
        ),
        [sides],
    )


def _whole_ledgers(run: Run) -> list[str]:
    ledger = {"loyalty_accrual", "loyalty_redemption"}
    sides = []
    for side, reader, owner in (("R", run.m, run.r), ("M", run.r, run.m)):
        grants = visible_records(partner=reader, at=run.now).grants
        if ledger <= {g.kind for g in grants if g.counterpart_id == owner.pk}:
            sides.append(side)
    return sides


def _double_credit(run: Run) -> None:
    found(
        run,
        """SELECT 'double_credit', true, a.gtin, a.serial, a.customer_id, 'double_credit:' || a.id || ':' || b.id,
                  jsonb_build_object('retailer_points', (a.points)::int,
                                     'manufacturer_points', (b.points)::int),
                  ARRAY[a.id, b.id], ARRAY['retailer accrual', 'manufacturer accrual']
           FROM recon_rest a JOIN recon_rest b
             ON b.side = 'M' AND b.kind = 'loyalty_accrual' AND b.gtin = a.gtin AND b.serial = a.serial
            AND coalesce(b.reason, 'purchase') = 'purchase' AND (b.points)::int > 0
           WHERE a.side = 'R' AND a.kind = 'loyalty_accrual' AND a.gtin <> ''
             AND coalesce(a.reason, 'purchase') = 'purchase' AND (a.points)::int > 0""",
    )
