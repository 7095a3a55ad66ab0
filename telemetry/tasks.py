"""Telemetry tasks: thin, idempotent, ids as arguments (they ack late and may run twice)."""

from datetime import timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from . import services
from .models import Device, ServiceRule
from .partitions import partitions_maintain


@shared_task(name="telemetry.refresh_rollups", acks_late=True, time_limit=600, soft_time_limit=570)
def refresh_rollups(device_ids, start, end):
    """Recompute the roll-up buckets a committed batch touched (idempotent: a recomputation)."""
    services.rollups_refresh(device_ids=device_ids, start=start, end=end)
    return len(device_ids)


@shared_task(name="telemetry.evaluate_rules", acks_late=True, time_limit=600, soft_time_limit=570)
def evaluate_rules(device_ids):
    """Evaluate the rules of the devices a committed batch touched; idempotent through the
    one-live-signal-per-device-and-rule constraint."""
    return [s.pk for s in services.rules_evaluate(device_ids=device_ids)]


@shared_task(name="telemetry.process_batch", acks_late=True, time_limit=600, soft_time_limit=570)
def process_batch(batch_id):
    """After a batch commits: its rules, then the roll-ups its manufacturer's batches owe (their
    outbox rows are deleted with them)."""
    opened = services.pending_batch_process(batch_id=batch_id)
    return None if opened is None else [s.pk for s in opened]


@shared_task(name="telemetry.sweep_pending_batches", time_limit=120, soft_time_limit=100)
def sweep_pending_batches(older_than_seconds=60):
    """Beat (every minute): enqueue the batches whose work is still owed after a minute — the
    after-commit task was lost while Redis was away, or Redis restarted without its queue."""
    due = services.pending_batches_due(older_than=timedelta(seconds=older_than_seconds))
    for batch_id in due:
        process_batch.delay(batch_id)
    return len(due)


@shared_task(name="telemetry.resolve_cleared_signals", time_limit=120, soft_time_limit=100)
def resolve_cleared_signals():
    """Beat (every 5 minutes): resolve live signals whose condition has stayed cleared for
    ``TELEMETRY_SIGNAL_CLEAR_MINUTES``."""
    return services.signals_resolve_cleared()


@shared_task(name="telemetry.evaluate_no_data", acks_late=True, time_limit=600, soft_time_limit=570)
def evaluate_no_data():
    """Beat: silence is not an ingest, so rules with a no-data condition run on a clock."""
    # The beat works for every manufacturer; each rule only reaches the devices of its own
    # manufacturer and model.
    rules = ServiceRule.objects.unscoped("the beat works for every manufacturer").filter(
        active=True, conditions__contains=[{"kind": "no_data"}]
    )
    keys = Q(pk__in=[])
    for rule in rules:
        keys |= Q(manufacturer_id=rule.manufacturer_id, model_name=rule.model_name)
    theirs = Device.objects.unscoped("each rule's own maker's devices of its model")
    ids = list(theirs.filter(keys).values_list("pk", flat=True))
    opened = services.rules_evaluate(device_ids=ids, kinds={"no_data"}) if ids else []
    return {"devices": len(ids), "opened": len(opened), "at": timezone.now().isoformat()}


@shared_task(
    name="telemetry.maintain_partitions", acks_late=True, time_limit=900, soft_time_limit=870
)
def maintain_partitions():
    """Beat (daily): partitions for this month and two ahead; drop those past retention."""
    return partitions_maintain()
