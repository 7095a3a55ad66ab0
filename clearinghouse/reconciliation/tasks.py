"""Reconciliation tasks: one run per pair at a time, after ingest (debounced) and on a beat."""

import logging
import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from partners.agreements.selectors import pairs_in_force
from partners.models import Partner

from .engine import RUN_TIME_LIMIT, reconcile_pair, run_announce
from .models import ReconciliationRun
from .services import findings_forget_erased

logger = logging.getLogger(__name__)


@shared_task(
    name="reconciliation.reconcile_pair",
    time_limit=RUN_TIME_LIMIT,
    soft_time_limit=RUN_TIME_LIMIT - 60,
)
def reconcile_pair_task(manufacturer_id, retailer_id, trigger="beat", full=False):
    """Idempotent: a redelivered or repeated task re-runs from the pair's watermark and upserts."""
    pair = Partner.objects.unscoped("the reconciliation engine reads both parties of a pair")
    partners = {p.pk: p for p in pair.filter(pk__in=[manufacturer_id, retailer_id])}
    manufacturer, retailer = partners.get(_uuid(manufacturer_id)), partners.get(_uuid(retailer_id))
    if manufacturer is None or retailer is None:
        return None
    run = reconcile_pair(manufacturer=manufacturer, retailer=retailer, trigger=trigger, full=full)
    return {"run": run.pk, "status": run.status, "counts": run.counts}


def _uuid(value):
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


@shared_task(name="reconciliation.reconcile_all", time_limit=300, soft_time_limit=280)
def reconcile_all(full=False):
    """Beat: enqueue a run for every pair with an agreement in force (also the sweep that catches
    ingests whose trigger was lost while Redis was away). The nightly full round also clears
    erased customers from the findings of pairs that no longer run."""
    if full:
        findings_forget_erased()
    pairs = pairs_in_force()
    for manufacturer_id, retailer_id in pairs:
        reconcile_pair_task.delay(
            str(manufacturer_id), str(retailer_id), "beat-full" if full else "beat", full
        )
    return len(pairs)


def schedule_after_ingest(partner):
    """After an ingest commits: one run per pair of this partner, at most one per debounce window
    (a burst of batches becomes one run a few seconds later)."""
    for manufacturer_id, retailer_id in pairs_in_force(partner=partner):
        key = f"recon:debounce:{manufacturer_id}:{retailer_id}"
        try:
            if cache.add(key, 1, timeout=settings.RECON_DEBOUNCE_SECONDS):
                reconcile_pair_task.apply_async(
                    args=[str(manufacturer_id), str(retailer_id), "ingest", False],
                    countdown=settings.RECON_DEBOUNCE_SECONDS,
                )
        except Exception:  # Redis away: the beat's sweep runs the pair later
            logger.warning("could not schedule reconciliation; the beat will", exc_info=True)


@shared_task(name="reconciliation.announce_run", time_limit=RUN_TIME_LIMIT)
def announce_run(run_id):
    """A run's webhooks, from its outbox (idempotent: a done outbox is left alone)."""
    return run_announce(run_id=run_id)


@shared_task(name="reconciliation.announce_sweep", time_limit=300, soft_time_limit=280)
def announce_sweep():
    """Beat: announce the runs whose after-commit announcement was lost (Redis away, a worker
    killed after the run's commit)."""
    due = ReconciliationRun.objects.unscoped("the sweep works for every pair's runs").filter(
        status=ReconciliationRun.Status.DONE,
        announced_at__isnull=True,
        finished_at__lt=timezone.now() - timedelta(minutes=1),
    )
    ids = list(due.values_list("pk", flat=True)[:500])
    for run_id in ids:
        announce_run.delay(run_id)
    return len(ids)
