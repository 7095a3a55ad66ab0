"""Service rules: a request, its visit and its completion across the two parties (the links,
a case completed on one side and open or returned on the other, a request open past the SLA)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings

from .findings import found

if TYPE_CHECKING:
    from .run import Run


def service_cases(run: Run) -> None:
    # Request ↔ visit ↔ completion links, by unit and reference.
    run.counts["links_created"] += run.sql(
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
        [run.now],
    )
    sla_cutoff = run.now - timedelta(days=settings.RECON_SERVICE_SLA_DAYS)
    # Records are never changed: a party updates a service case by sending a new request
    # with the case's reference. A case, per party: its first request, and the status of
    # its latest.
    run.sql(
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
    found(
        run,
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
    found(
        run,
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
    found(
        run,
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
