"""Warranty rules: a sale and its registration (the link, a purchase date too far from the sale,
a sale never registered), claims (before the sale, after the warranty period, repeated), and the
manufacturer's own registrations and claims with no sale from any retailer."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings

from ..models import WarrantyTerms
from .findings import found
from .scope import REC_COLUMNS, evidence, restrict

if TYPE_CHECKING:
    from .run import Run

# A sale and a registration are of the same purchase when they name the same unit, and the same
# customer where both records name one (an anonymous sale, or a registration sent without the
# customer, matches on the unit alone).
SAME_CUSTOMER = (
    "({a}.customer_id IS NULL OR {b}.customer_id IS NULL OR {a}.customer_id = {b}.customer_id)"
)
# The same, between a sale ``s`` and a registration ``g``: as every rule and link writes it.
SALE_REGISTRATION_CUSTOMER = SAME_CUSTOMER.format(a="s", b="g")


def sale_registration_links(run: Run) -> None:
    if run.full:
        # From here to the manufacturer-only step the rules join whole working tables: hash
        # joins. A nested loop chosen on a misestimate (a pair where nearly every sale has
        # its registration looks like one with none left) would rescan a table for each of
        # a million rows.
        run.sql("SET LOCAL enable_nestloop = off")
    # A sale of the retailer and a registration of the manufacturer: a link only this pair
    # writes, and only one run of the pair runs at a time (the lock). So a plain insert of
    # the links not there yet, in the order of the unique key (each index entry goes to the
    # right-hand end of the index); the unique key still stops a duplicate.
    created = run.sql(
        f"""INSERT INTO reconciliation_recordlink (kind, from_record_id, to_record_id, created_at)
           SELECT 'sale_registration', s.id, g.id, %s
           FROM recon_rec s JOIN recon_rec g
             ON g.gtin = s.gtin AND g.serial = s.serial AND g.side = 'M' AND g.kind = 'warranty_registration'
           WHERE s.side = 'R' AND s.kind = 'sale' AND {SALE_REGISTRATION_CUSTOMER}
             AND NOT EXISTS (SELECT 1 FROM reconciliation_recordlink l WHERE l.from_record_id = s.id
                             AND l.to_record_id = g.id AND l.kind = 'sale_registration')
           ORDER BY s.id, g.id""",
        [run.now],
    )
    run.counts["links_created"] = created


def sales_and_registrations(run: Run) -> None:
    tolerance = settings.RECON_DATE_TOLERANCE_DAYS
    found(
        run,
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
    found(
        run,
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
            run.now - timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS),
        ],
    )


def claims(run: Run) -> None:
    # Hash joins over the claimed units' sales (no per-claim lookups, no index on recon_rec).
    run.sql(
        """CREATE TEMP TABLE recon_claim ON COMMIT DROP AS
           SELECT id, gtin, serial, customer_id, occurred_at FROM recon_rest WHERE kind = 'warranty_claim'"""
    )
    run.sql("ANALYZE recon_claim")
    found(
        run,
        """SELECT 'claim_before_sale', true, c.gtin, c.serial, c.customer_id, 'claim_before_sale:' || c.id,
                  jsonb_build_object('days_before', ((s.occurred_at - c.occurred_at))::text),
                  ARRAY[c.id, s.id], ARRAY['claim', 'sale']
           FROM recon_claim c
           JOIN (SELECT DISTINCT ON (s.gtin, s.serial) s.gtin, s.serial, s.id, s.occurred_at
                 FROM recon_rec s WHERE s.side = 'R' AND s.kind = 'sale'
                  AND EXISTS (SELECT 1 FROM recon_claim x WHERE x.gtin = s.gtin AND x.serial = s.serial)
                 ORDER BY s.gtin, s.serial, s.occurred_at, s.id) s
             ON s.gtin = c.gtin AND s.serial = c.serial
           WHERE c.occurred_at < s.occurred_at""",
    )
    found(
        run,
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
        [run.m.pk, settings.RECON_DEFAULT_WARRANTY_MONTHS],
    )
    found(
        run,
        """SELECT 'repeated_claims', true, c.gtin, c.serial, min(c.customer_id::text)::uuid,
                  'repeated_claims:' || c.gtin || ':' || c.serial, jsonb_build_object('claims', count(*)),
                  array_agg(c.id ORDER BY c.id), array_fill('claim'::text, ARRAY[count(*)::int])
           FROM recon_rest c WHERE c.kind = 'warranty_claim'
           GROUP BY c.gtin, c.serial HAVING count(*) >= 2""",
    )


def maker_only(run: Run) -> None:
    """Registrations and claims of the manufacturer with no sale that it may see from any
    retailer: the manufacturer's own records, in its own queue."""
    if run.full:
        run.sql("SET LOCAL enable_nestloop = on")  # reads the records table again
    own_kinds = ["warranty_registration", "warranty_claim"]
    sql_own, params_own = restrict(
        run,
        evidence(run, partner=run.m).filter(submitted_by_id=run.m.pk, kind__in=own_kinds),
        submitted_by=run.m.pk,
        kinds=own_kinds,
    )
    # The sales of this retailer that the manufacturer may see are in recon_rec already;
    # only the other partners' are read here.
    sql_sale, params_sale = restrict(
        run,
        evidence(run, partner=run.m).filter(kind="sale").exclude(submitted_by_id=run.r.pk),
        kinds=["sale"],
        other_than=run.r.pk,
    )
    columns = ", ".join(REC_COLUMNS)
    run.sql(
        f"CREATE TEMP TABLE recon_own ON COMMIT DROP AS SELECT * FROM ({sql_own}) o ({columns})",
        params_own,
    )
    run.sql(
        f"CREATE TEMP TABLE recon_other_sale ON COMMIT DROP AS SELECT DISTINCT gtin, serial, customer_id FROM ({sql_sale}) s ({columns})",
        params_sale,
    )
    run.sql("CREATE INDEX ON recon_other_sale (gtin, serial)")
    run.sql("ANALYZE recon_other_sale")
    grace_cutoff = run.now - timedelta(days=settings.RECON_REGISTRATION_GRACE_DAYS)
    found(
        run,
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
