"""Customers as pseudonymous subjects, their encrypted identifiers, consent grants, the
hash-chained ledger, receipts, the access log and dashboard sign-in links."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from partners.models import Partner
from partners.tenancy import PartnerScopedModel


class Customer(models.Model):
    """A pseudonymous subject. Its id is the only reference partners and the ledger ever hold;
    who the person is lives only in its encrypted identifiers. After erasure the row stays as a
    tombstone (``erased_at``) with nothing decryptable behind it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Reconciliation looks up the customers erased since a pair's last run (to close and
            # forget its findings about them): a few among all customers, so only those.
            models.Index(
                fields=["erased_at"],
                condition=Q(erased_at__isnull=False),
                name="customer_erased",
            )
        ]

    def __str__(self):
        return f"customer {self.id}"

    @property
    def is_erased(self):
        return self.erased_at is not None


class CustomerKey(models.Model):
    """The customer's data key, wrapped by a versioned master key. Deleting this row is the
    crypto-shredding step of erasure."""

    # References of this model and of CustomerSource, and Identifier.first_seen_by, are checked
    # by statement triggers, not foreign keys (clearinghouse/common/references.py).
    customer = models.OneToOneField(
        Customer,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="data_key",
        db_constraint=False,
    )
    wrapped = models.BinaryField()
    master_version = models.CharField(max_length=20)
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["master_version"])]

    def __str__(self):
        return f"data key of {self.customer_id} (master {self.master_version})"


class Identifier(models.Model):
    """One way to name a customer: kind, namespace (the loyalty programme) and the keyed digest
    that matching uses. ``ciphertext`` is the normalised value under the customer's data key, or
    empty when the partner sent only a hash."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        PHONE = "phone", "Phone"
        LOYALTY = "loyalty", "Loyalty number"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identifiers")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    namespace = models.CharField(max_length=64, blank=True, default="")
    hmac_version = models.CharField(max_length=20)
    digest = models.BinaryField(max_length=32)
    ciphertext = models.BinaryField(null=True, blank=True)
    # No index: nothing looks identifiers up by the partner that sent one first, and every new
    # customer would pay for it.
    first_seen_by = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "namespace", "hmac_version", "digest"],
                name="identifier_digest_unique",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["email", "phone", "loyalty"]), name="identifier_kind_valid"
            ),
        ]

    def __str__(self):
        return f"{self.kind} of {self.customer_id}"


class CustomerSource(models.Model):
    """A partner that has sent data about the customer: the dashboard's "who holds my data"."""

    # Indexed by the unique key below, which starts with it.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="sources",
        db_index=False,
        db_constraint=False,
    )
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    categories = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "partner"], name="one_source_row_per_partner"
            )
        ]

    def __str__(self):
        return f"{self.partner_id} holds data on {self.customer_id}"


class ConsentGrant(PartnerScopedModel):
    """The customer's permission for one partner (the grantee) to use some categories of their
    data for one purpose, under one policy version. Active while not revoked and not expired;
    at most one active grant per customer, grantee and purpose (a new one supersedes)."""

    class Source(models.TextChoices):
        CUSTOMER = "customer", "The customer, in the dashboard"
        PARTNER = "partner", "A partner, at its own touchpoint"

    class Ended(models.TextChoices):
        CUSTOMER = "customer", "Revoked by the customer"
        PARTNER = "partner", "Revoked through a partner"
        SUPERSEDED = "superseded", "Replaced by a newer grant"
        ERASURE = "erasure", "Ended by erasure"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="grants")
    grantee = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="consent_grants")
    purpose = models.CharField(max_length=30)
    categories = ArrayField(models.CharField(max_length=20))
    policy_version = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=10, choices=Source.choices)
    collected_by = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evidence = models.JSONField(default=dict, blank=True)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=12, choices=Ended.choices, blank=True)
    expiry_recorded_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "grantee"

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "grantee", "purpose"],
                condition=Q(revoked_at__isnull=True),
                name="one_open_grant_per_purpose",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("granted_at")),
                name="grant_expires_after_it_starts",
            ),
        ]
        indexes = [
            models.Index(
                fields=["grantee", "purpose", "customer"],
                condition=Q(revoked_at__isnull=True),
                name="open_grant_lookup",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(revoked_at__isnull=True, expiry_recorded_at__isnull=True),
                name="grant_expiry_sweep",
            ),
            # What changed for a grantee since a time (reconciliation re-checks those customers).
            models.Index(fields=["grantee", "granted_at"], name="grant_granted_since"),
            models.Index(
                fields=["grantee", "revoked_at"],
                condition=Q(revoked_at__isnull=False),
                name="grant_revoked_since",
            ),
            models.Index(
                fields=["grantee", "expires_at"],
                condition=Q(expires_at__isnull=False),
                name="grant_expires_since",
            ),
        ]

    def __str__(self):
        return f"{self.purpose} for {self.grantee_id} by {self.customer_id}"

    def is_active(self, at=None):
        at = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class LedgerEntry(models.Model):
    """One entry of the append-only, hash-chained consent ledger. ``hash`` covers the entry's
    content and the previous entry's hash, so an edited, removed or reordered entry breaks the
    chain from there on. The database refuses UPDATE and DELETE on this table (a trigger).
    Entries name customers and partners only by their pseudonymous ids, so erasure never has to
    touch the ledger."""

    seq = models.BigIntegerField(primary_key=True)
    recorded_at = models.DateTimeField()
    kind = models.CharField(max_length=40)
    customer_ref = models.UUIDField(null=True, blank=True, db_index=True)
    partner_ref = models.UUIDField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "ledger entries"

    def __str__(self):
        return f"#{self.seq} {self.kind}"


class Receipt(models.Model):
    """A consent receipt (after the Kantara consent-receipt idea) signed with the clearinghouse's
    Ed25519 key. ``payload`` is exactly what was signed."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Consent given"
        REVOKE = "revoke", "Consent withdrawn"
        ERASURE = "erasure", "Erasure"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="receipts")
    grant = models.ForeignKey(
        ConsentGrant, null=True, blank=True, on_delete=models.SET_NULL, related_name="receipts"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    payload = models.JSONField()
    signature = models.CharField(max_length=100)
    key_id = models.CharField(max_length=20)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self):
        return f"{self.kind} receipt {self.id}"


class AccessLogEntry(models.Model):
    """A partner read the customer's data: one row per request and customer, not per record."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="access_log")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    purposes = ArrayField(models.CharField(max_length=30), default=list)
    categories = ArrayField(models.CharField(max_length=20), default=list)
    channel = models.CharField(max_length=20)
    record_count = models.PositiveIntegerField()
    request_id = models.CharField(max_length=64, blank=True)
    accessed_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The ledger entry of this access, once a worker has chained it (``access_log_chain``):
    # reads write their access-log rows without waiting for the ledger's lock.
    ledger_seq = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-accessed_at"]
        indexes = [
            models.Index(
                fields=["id"], condition=Q(ledger_seq__isnull=True), name="access_log_unchained"
            )
        ]

    def __str__(self):
        return f"{self.partner_id} read {self.customer_id} at {self.accessed_at}"


class MagicLink(models.Model):
    """A one-time, expiring dashboard sign-in link. The e-mailed token is signed over this id;
    ``used_at`` makes it single-use."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    identifier = models.ForeignKey(Identifier, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"sign-in link {self.id}"


class RecipientNotice(PartnerScopedModel):
    """GDPR Art. 19: a partner that received a customer's data is told that the customer withdrew
    a consent it received data under (``revocation``) or was erased (``erasure``), and is asked
    to acknowledge. One notice per withdrawn grant and recipient, or per erased customer and
    recipient (database constraints). It holds only pseudonymous references, so it stays after
    erasure, beside the customer's tombstone; it is the evidence that recipients were told.

    ``sent_at`` is when a webhook event for it was first stored (empty when the partner listens
    to no webhook for it and reads its notices from the API); ``acknowledged_via`` says whether
    the partner acknowledged with a signed webhook answer or on the API. Unacknowledged notices
    are chased with growing pauses (``chase_count``, ``last_chased_at``). Written only by the
    services in ``consent.notices``."""

    class Kind(models.TextChoices):
        REVOCATION = "revocation", "Consent withdrawn"
        ERASURE = "erasure", "Customer erased"

    class Via(models.TextChoices):
        WEBHOOK = "webhook", "A signed answer to the webhook"
        API = "api", "The API"
        PORTAL = "portal", "The portal"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notices")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    grant = models.ForeignKey(
        ConsentGrant, null=True, blank=True, on_delete=models.SET_NULL, related_name="notices"
    )
    purpose = models.CharField(max_length=30, blank=True)
    occurred_at = models.DateTimeField(help_text="When the customer withdrew or was erased.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_via = models.CharField(max_length=10, choices=Via.choices, blank=True)
    chase_count = models.PositiveSmallIntegerField(default=0)
    last_chased_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "partner"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["grant", "partner"],
                condition=Q(kind="revocation"),
                name="one_revocation_notice_per_recipient",
            ),
            models.UniqueConstraint(
                fields=["customer", "partner"],
                condition=Q(kind="erasure"),
                name="one_erasure_notice_per_recipient",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["revocation", "erasure"]), name="notice_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True, acknowledged_via="")
                | Q(
                    acknowledged_at__isnull=False, acknowledged_via__in=["webhook", "api", "portal"]
                ),
                name="notice_acknowledged_with_channel",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(acknowledged_at__isnull=True),
                name="notice_unacknowledged",
            )
        ]

    def __str__(self):
        return f"{self.kind} notice to {self.partner_id} about {self.customer_id}"

    @property
    def acknowledgement_delay(self):
        """How long the recipient took to acknowledge, from the withdrawal or erasure."""
        from datetime import timedelta

        if self.acknowledged_at is None:
            return None
        return max(self.acknowledged_at - self.occurred_at, timedelta(0))
