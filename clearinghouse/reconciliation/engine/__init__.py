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

The package, by concern: ``run`` (one run of a pair: its lock, its transaction, its steps in
order, its webhooks), ``scope`` (what a run looks at: the candidate ids since the watermark, and
the records each party may see of the other's, built through ``Visible.compile_sql``), one module
per rule family (``warranty``, ``service``, ``loyalty``), and ``findings`` (the upsert of
discrepancies and their evidence).
"""

from .findings import DESCRIPTIONS, SEVERITY
from .run import RUN_TIME_LIMIT, reconcile_pair, run_announce
from .scope import CHANGE_OVERLAP, RECORD_OVERLAP
from .warranty import SALE_REGISTRATION_CUSTOMER

__all__ = [
    "CHANGE_OVERLAP",
    "DESCRIPTIONS",
    "RECORD_OVERLAP",
    "RUN_TIME_LIMIT",
    "SALE_REGISTRATION_CUSTOMER",
    "SEVERITY",
    "reconcile_pair",
    "run_announce",
]
