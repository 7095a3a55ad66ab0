"""Devices, their readings (a partitioned table), roll-ups, service rules, signals and the
prompts a signal puts in front of the customer."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from consent.models import Customer
from partners.models import Partner
from partners.tenancy import PartnerScopedModel


class TelemetrySettings(PartnerScopedModel):
    """A manufacturer's telemetry configuration: how long its raw readings are kept."""

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="+")
    retention_days = models.PositiveIntegerField(default=365)

    tenant_path = "partner"

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(retention_days__gte=31), name="telemetry_retention_min_month"
            )
        ]

    def __str__(self):
        return f"{self.partner_id}: {self.retention_days} days"


class Device(PartnerScopedModel):
    """A connected product unit a manufacturer registered: its GTIN + serial tie it to the
    unit's records (the warranty registration names its customer)."""

    id = models.BigAutoField(primary_key=True)
    manufacturer = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    serial = models.CharField(max_length=64)
    gtin = models.CharField(max_length=14)
    model_name = models.CharField(max_length=100)
    firmware = models.CharField(max_length=50, blank=True, default="")
    registered_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "manufacturer"

    class Meta:
        ordering = ["serial"]
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "serial"], name="device_serial_unique_per_maker"
            )
        ]
        indexes = [models.Index(fields=["manufacturer", "model_name"], name="device_model")]

    def __str__(self):
        return self.serial


class Reading(models.Model):
    """One reading. The table is partitioned by month (created by RunSQL in the migration and
    maintained by ``telemetry.partitions``); the ORM only reads it."""

    pk = models.CompositePrimaryKey("device_id", "metric", "ts")
    device_id = models.BigIntegerField()
    metric = models.TextField()
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        managed = False
        db_table = "telemetry_reading"

    def __str__(self):
        return f"{self.device_id} {self.metric}@{self.ts}={self.value}"


class _Rollup(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=40)
    bucket = models.DateTimeField()
    count = models.IntegerField()
    min = models.FloatField()
    max = models.FloatField()
    avg = models.FloatField()
    sum = models.FloatField()

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.device_id} {self.metric}@{self.bucket}"


class HourlyRollup(_Rollup):
    """Readings per device, metric and hour; recomputed from the raw readings (idempotent)."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "metric", "bucket"], name="telemetry_hourly_unique"
            )
        ]


class DailyRollup(_Rollup):
    """Readings per device, metric and UTC day; recomputed from the raw readings."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "metric", "bucket"], name="telemetry_daily_unique"
            )
        ]


class ServiceRule(PartnerScopedModel):
    """A manufacturer's rule for one product model: a list of conditions joined by AND or OR
    (see ``telemetry.rules`` for the condition kinds). ``issue`` is the plain text a service
    request and the customer read."""

    class Operator(models.TextChoices):
        AND = "and", "All conditions"
        OR = "or", "Any condition"

    manufacturer = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    issue = models.CharField(max_length=200)
    prompt_text = models.CharField(max_length=300, blank=True, default="")
    operator = models.CharField(max_length=3, choices=Operator.choices, default=Operator.AND)
    conditions = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    tenant_path = "manufacturer"

    class Meta:
        ordering = ["model_name", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(operator__in=["and", "or"]), name="service_rule_operator_valid"
            )
        ]

    def __str__(self):
        return f"{self.model_name}: {self.name}"


class ServiceSignal(PartnerScopedModel):
    """A rule held for a device. At most one live (open or acknowledged) signal per device and
    rule, held by a partial unique index, so re-evaluating never duplicates one."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    LIVE = ("open", "acknowledged")

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="signals")
    rule = models.ForeignKey(ServiceRule, on_delete=models.CASCADE, related_name="signals")
    opened_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    status_changed_at = models.DateTimeField(default=timezone.now)
    evidence = models.JSONField(default=list)
    service_request_ref = models.UUIDField(null=True, blank=True)
    # Set by the first evaluation that finds the rule no longer holding for the device, cleared
    # when it holds again; a live signal cleared for TELEMETRY_SIGNAL_CLEAR_MINUTES is resolved.
    condition_cleared_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "device__manufacturer"

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "rule"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="one_live_signal_per_device_rule",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "acknowledged", "resolved", "dismissed"]),
                name="service_signal_status_valid",
            ),
        ]

    def __str__(self):
        return f"SIG-{self.pk}"


class CustomerPrompt(models.Model):
    """What a signal asks the (consenting) customer: book a free check? One per signal."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    signal = models.OneToOneField(ServiceSignal, on_delete=models.CASCADE, related_name="prompt")
    # The retailer that sold the unit, told when the customer accepts; null: the manufacturer's
    # own service (no retailer may be told).
    retailer = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    text = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"prompt for SIG-{self.signal_id}"


class PendingBatch(PartnerScopedModel):
    """The work a committed batch of readings still owes: refresh the roll-ups of the span it
    touched and evaluate the rules of its devices. Written in the batch's own transaction (an
    outbox), deleted once the work is done; a task is enqueued after commit, and the minute
    sweep ``telemetry.sweep_pending_batches`` enqueues any row whose task was lost (Redis away
    at commit, a restarted Redis that lost its queue). The work is idempotent, so a row done
    twice changes nothing.

    Rules are evaluated per batch (``rules_done`` then set); roll-ups are refreshed for all of a
    manufacturer's rows that are past their rules at once, so batches landing in the same hour
    share one recomputation of it."""

    id = models.BigAutoField(primary_key=True)
    manufacturer = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    device_ids = ArrayField(models.BigIntegerField())
    first_ts = models.DateTimeField()
    last_ts = models.DateTimeField()
    rules_done = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    tenant_path = "manufacturer"

    def __str__(self):
        return f"batch {self.pk}: {len(self.device_ids)} devices"
