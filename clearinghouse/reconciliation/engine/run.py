"""One run of one pair: the lock that lets one run of a pair at a time, the run's one
transaction and its steps in order (``Run.execute``), and the announcement of what it opened
and resolved (its outbox of webhooks)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import timezone

from partners.models import AgreementVersion, Partner, SharingAgreement

from ..models import PairState, ReconciliationRun, WarrantyTerms
from ..notify import anybody_listens, discrepancies_opened, discrepancies_updated
from . import findings, loyalty, scope, service, warranty

logger = logging.getLogger(__name__)
# The most a run may take (the task's hard time limit): a run still "running" after that has
# lost its worker. Below the broker's visibility timeout, so a live run is never redelivered.
RUN_TIME_LIMIT = 30 * 60
# PostgreSQL memory per sort or hash of a full run's transaction (its hash joins stay in memory).
WORK_MEM = "64MB"

# Told of each step as it ends: (step, steps done, steps in all).
Progress = Callable[[str, int, int], object]


def _lock_key(manufacturer_id: UUID, retailer_id: UUID) -> str:
    return f"recon:{manufacturer_id}:{retailer_id}"


def reconcile_pair(
    *,
    manufacturer: Partner,
    retailer: Partner,
    trigger: str = "manual",
    full: bool = False,
    progress: Progress | None = None,
) -> ReconciliationRun:
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
            counts, upto = Run(state, run, full=full, progress=progress).execute()
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


def _announce_later(run_id: int) -> None:
    from ..tasks import announce_run

    try:
        announce_run.delay(run_id)
    except Exception:  # Redis away: the sweep announces it
        logger.warning("could not enqueue the run's webhooks; the sweep will", exc_info=True)


def run_announce(*, run_id: int) -> int | None:
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


class Run:
    """One run of one pair, inside its transaction: the pair's state, what its agreement in force
    is, the moment it reads at, the cursor every step's SQL goes through, and the counts the
    steps gather. Each step is a function of the run (``scope``, the rule families,
    ``findings``)."""

    def __init__(
        self,
        state: PairState,
        run: ReconciliationRun,
        *,
        full: bool,
        progress: Progress | None,
    ) -> None:
        self.state = state
        self.row = run  # its ReconciliationRun
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

    def _agreement_in_force(self) -> tuple[str, str]:
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

    def _terms_stamp(self) -> str:
        terms = WarrantyTerms.objects.for_partner(self.m).aggregate(
            n=Count("pk"), last=Max("updated_at")
        )
        return f"terms:{terms['n']}:{terms['last'].timestamp() if terms['last'] else 0}"

    def sql(self, query: str, params: Sequence = ()) -> int:
        self.cursor.execute(query, params)
        return self.cursor.rowcount

    def count(self, table: str) -> int:
        self.cursor.execute(f"SELECT count(*) FROM {table}")
        return self.cursor.fetchone()[0]

    def execute(self) -> tuple[dict, int]:
        steps = [
            ("scope", scope.candidates),
            ("shared records", scope.shared_records),
            ("sale-registration links", warranty.sale_registration_links),
            ("sales and registrations", warranty.sales_and_registrations),
            ("claims", warranty.claims),
            ("service", service.service_cases),
            ("loyalty", loyalty.points),
            ("manufacturer only", warranty.maker_only),
            ("discrepancies", findings.upsert),
            ("erased customers", findings.forget_erased),
            ("watermark", scope.watermark),
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
                step(self)
                self.progress(name, n, len(steps))
        self.counts.pop("_", None)
        return self.counts, self.upto
