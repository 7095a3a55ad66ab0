"""Partner organisations, their staff, invitations, API credentials and the partner audit trail."""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from .tenancy import PartnerScopedModel


class UserManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email):
        return (email or "").strip().lower()

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in to the portal: partner staff, or an operator (``is_staff``) who
    works in Django admin. Signs in with an e-mail address, stored lower-cased."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="Operator of the clearinghouse: may use Django admin."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Partner(PartnerScopedModel):
    """A manufacturer or a retailer. Registers itself as pending; the operator approves it
    (active) or suspends it. Only an active partner's staff and credentials are let in."""

    class Kind(models.TextChoices):
        MANUFACTURER = "manufacturer", "Manufacturer"
        RETAILER = "retailer", "Retailer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending approval"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    contact_email = models.EmailField()
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)

    tenant_path = "pk"

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["manufacturer", "retailer"]), name="partner_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "active", "suspended"]),
                name="partner_status_valid",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_active(self):
        return self.status == self.Status.ACTIVE


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    ANALYST = "analyst", "Analyst"
    VIEWER = "viewer", "Viewer"


class Membership(PartnerScopedModel):
    """A user's place in one partner organisation, with a role:

    - admin: everything, including staff, credentials, agreements and webhooks;
    - analyst: works the partner's data (uploads, discrepancies) but manages no one;
    - viewer: reads, changes nothing.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    tenant_path = "partner"

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["admin", "analyst", "viewer"]), name="membership_role_valid"
            )
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) at {self.partner}"

    @property
    def is_admin(self):
        return self.role == Role.ADMIN

    @property
    def can_change_data(self):
        return self.role in (Role.ADMIN, Role.ANALYST)


class Invitation(PartnerScopedModel):
    """An admin's invitation of a colleague by e-mail. The link carries a signed, expiring token
    over the invitation id, so nothing secret is stored or passed to workers."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "partner"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email",
            )
        ]

    def __str__(self):
        return f"{self.email} → {self.partner}"

    @property
    def is_open(self):
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class Scope(models.TextChoices):
    """What an API credential may do. Staff on the browsable API get the scopes of their role."""

    PARTNER_READ = "partner:read", "Read the partner's own profile"
    CREDENTIALS_MANAGE = "credentials:manage", "List and revoke API credentials"
    RECORDS_READ = "records:read", "Read records and timelines"
    RECORDS_WRITE = "records:write", "Submit interaction records"
    CONSENT_READ = "consent:read", "Read customers' consent status"
    CONSENT_WRITE = "consent:write", "Submit consents collected at the partner's touchpoints"
    TELEMETRY_READ = "telemetry:read", "Read devices, readings and service signals"
    TELEMETRY_WRITE = "telemetry:write", "Register devices and push readings"
    DISCREPANCIES_READ = "discrepancies:read", "Read the discrepancy queue"
    DISCREPANCIES_WRITE = "discrepancies:write", "Resolve, dismiss and comment on discrepancies"
    AGREEMENTS_READ = "agreements:read", "Read sharing agreements"
    WEBHOOKS_MANAGE = "webhooks:manage", "Manage webhook endpoints and deliveries"


READ_SCOPES = frozenset(s.value for s in Scope if s.value.endswith(":read"))
DATA_WRITE_SCOPES = frozenset(
    {Scope.RECORDS_WRITE, Scope.CONSENT_WRITE, Scope.TELEMETRY_WRITE, Scope.DISCREPANCIES_WRITE}
)


def scopes_for_role(role):
    """The scopes a staff member of this role holds on the browsable API."""
    if role == Role.ADMIN:
        return frozenset(s.value for s in Scope)
    if role == Role.ANALYST:
        return READ_SCOPES | DATA_WRITE_SCOPES
    return READ_SCOPES


class ApiCredential(PartnerScopedModel):
    """A key for a partner system. The key is ``chk_<prefix>_<secret>``: the prefix finds the row,
    the secret is kept only as its SHA-256 (a 256-bit random secret needs no slow hash) and
    compared in constant time. Shown once at creation; revocable; optional expiry; scoped."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=40, choices=Scope.choices), default=list)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests a minute; empty for the default."
    )
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "partner"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix})"

    @property
    def status(self):
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class PartnerEvent(PartnerScopedModel):
    """The partner's audit trail: who did what, when. Written by the service that made the change,
    in the same transaction."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    credential = models.ForeignKey(
        ApiCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=60)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    tenant_path = "partner"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.partner}: {self.action}"


# --- sharing agreements -------------------------------------------------------------------------


class SharingAgreement(PartnerScopedModel):
    """What a manufacturer and a retailer agree to share with each other: the clauses of its
    active version. One party proposes a version and only the other's countersignature puts it
    in force; a changed version needs countersigning again while the old one stays in force.
    Either party may suspend it (only that party may resume it) or terminate it for good.

    At most one agreement that is not terminated exists per pair (a database constraint).
    Written only by the services in ``partners.agreements``, which record every change as an
    ``AgreementEvent`` in the same transaction."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Not yet in force"
        ACTIVE = "active", "In force"
        SUSPENDED = "suspended", "Suspended"
        TERMINATED = "terminated", "Terminated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    manufacturer = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="agreements_as_manufacturer"
    )
    retailer = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="agreements_as_retailer"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED)
    created_at = models.DateTimeField(default=timezone.now)
    suspended_by = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    terminated_by = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    terminated_at = models.DateTimeField(null=True, blank=True)

    tenant_paths = ("manufacturer", "retailer")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "retailer"],
                condition=~Q(status="terminated"),
                name="one_open_agreement_per_pair",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["proposed", "active", "suspended", "terminated"]),
                name="agreement_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(manufacturer=F("retailer")), name="agreement_two_parties"
            ),
            models.CheckConstraint(
                condition=Q(status="suspended", suspended_by__isnull=False)
                | (~Q(status="suspended") & Q(suspended_by__isnull=True)),
                name="agreement_suspended_by_suspender",
            ),
            models.CheckConstraint(
                condition=Q(status="terminated", terminated_at__isnull=False)
                | (~Q(status="terminated") & Q(terminated_at__isnull=True)),
                name="agreement_terminated_when_ended",
            ),
        ]

    def __str__(self):
        return f"{self.manufacturer} ↔ {self.retailer} ({self.status})"

    def counterpart_of(self, partner):
        """The other party."""
        return self.retailer if partner.pk == self.manufacturer_id else self.manufacturer

    def _versions_with(self, status):
        # Uses the prefetched versions when the selector prefetched them (no query per row).
        return next((v for v in self.versions.all() if v.status == status), None)

    @property
    def active_version(self):
        """The countersigned version whose clauses apply while the agreement is in force."""
        return self._versions_with(AgreementVersion.Status.ACTIVE)

    @property
    def pending_version(self):
        """The proposal awaiting the other party's countersignature, if any."""
        return self._versions_with(AgreementVersion.Status.PROPOSED)


class AgreementVersion(PartnerScopedModel):
    """One numbered set of clauses of an agreement. ``clauses`` is a normalised, sorted list of
    ``{"kind", "purpose", "direction", "fields"}``; a version never changes its clauses. It is
    proposed by one party and becomes active when the other countersigns; the version it replaces
    is then superseded. A proposal may instead be rejected (by the other party) or withdrawn (by
    its proposer, or replaced by a newer proposal). At most one proposed and one active version
    per agreement (database constraints). Beside the clauses, a version states who credits
    loyalty points for a purchase (``purchase_points``): reconciliation reports a purchase
    credited by both programmes only where the terms say one programme credits it."""

    class PurchasePoints(models.TextChoices):
        ONE = "one", "One programme credits a purchase, not both"
        BOTH = "both", "Both programmes may credit the same purchase"

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Awaiting countersignature"
        ACTIVE = "active", "Countersigned, current"
        SUPERSEDED = "superseded", "Superseded"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    agreement = models.ForeignKey(
        SharingAgreement, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    clauses = models.JSONField(default=list)
    purchase_points = models.CharField(
        max_length=8, choices=PurchasePoints.choices, default=PurchasePoints.ONE
    )
    note = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    proposed_by_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    proposed_at = models.DateTimeField(default=timezone.now)
    countersigned_by_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    countersigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was superseded, rejected or withdrawn."
    )

    tenant_paths = ("agreement__manufacturer", "agreement__retailer")

    class Meta:
        ordering = ["agreement", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "number"], name="agreement_version_number_unique"
            ),
            models.UniqueConstraint(
                fields=["agreement"],
                condition=Q(status="proposed"),
                name="one_pending_version_per_agreement",
            ),
            models.UniqueConstraint(
                fields=["agreement"],
                condition=Q(status="active"),
                name="one_active_version_per_agreement",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["proposed", "active", "superseded", "rejected", "withdrawn"]
                ),
                name="agreement_version_status_valid",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="agreement_version_number_min"),
            models.CheckConstraint(
                condition=Q(purchase_points__in=["one", "both"]),
                name="agreement_version_purchase_points_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "superseded"], countersigned_at__isnull=False)
                | Q(
                    status__in=["proposed", "rejected", "withdrawn"],
                    countersigned_at__isnull=True,
                ),
                name="agreement_version_countersigned_when_in_force",
            ),
        ]

    def __str__(self):
        return f"version {self.number} of {self.agreement_id} ({self.status})"


class AgreementEvent(PartnerScopedModel):
    """The history of an agreement, seen by both parties: which partner's staff did what, when.
    Written by the service that made the change, in the same transaction."""

    agreement = models.ForeignKey(SharingAgreement, on_delete=models.CASCADE, related_name="events")
    version = models.ForeignKey(
        AgreementVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=60)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    tenant_paths = ("agreement__manufacturer", "agreement__retailer")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action} on {self.agreement_id}"


# --- webhooks -----------------------------------------------------------------------------------


class WebhookEventType(models.TextChoices):
    """What a partner's endpoint may subscribe to. ``ping`` is not among them: a test event goes
    to the one endpoint it was sent from, whatever that endpoint subscribes to."""

    DISCREPANCY_OPENED = "discrepancy.opened", "A discrepancy was opened"
    DISCREPANCY_UPDATED = "discrepancy.updated", "A discrepancy was updated"
    RECORD_SHARED = "record.shared", "A record was shared with you"
    SERVICE_SIGNAL = "service.signal", "A service signal was raised"
    CONSENT_REVOKED = "consent.revoked", "A customer withdrew a consent you received data under"
    CUSTOMER_ERASED = "customer.erased", "A customer whose data you received was erased"


WEBHOOK_PING = "ping"


class WebhookEndpoint(PartnerScopedModel):
    """An HTTPS address of a partner's system that receives signed event deliveries.

    The signing secret must be usable to sign, so it is stored (not hashed); it is shown to the
    partner once, at creation or rotation. After a rotation the previous secret keeps signing
    alongside the new one until ``previous_secret_expires_at``, so that the receiver can switch
    without dropping deliveries. Written only by the services in ``partners.webhooks``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = ArrayField(
        models.CharField(max_length=40, choices=WebhookEventType.choices), default=list
    )
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "partner"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.url

    def signing_secrets(self, at=None):
        """The secrets that sign a delivery now: the current one, and the previous one while its
        grace period after a rotation lasts."""
        at = at or timezone.now()
        secrets_ = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > at
        ):
            secrets_.append(self.previous_secret)
        return secrets_


class WebhookEvent(PartnerScopedModel):
    """Something that happened for one partner. ``subject`` says what it is about (record refs,
    a discrepancy id, a notice id) and never holds the data: every attempt, the delivery log and
    the portal build the data through the owning layer's decision at that moment
    (``partners.webhooks.payloads``), so a withdrawn consent stops a queued delivery.
    ``dedupe_key`` makes an emission idempotent per partner. ``ack_token``, when set, is what
    the receiver may sign to acknowledge the event."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_events")
    event_type = models.CharField(max_length=40)
    subject = models.JSONField(default=dict)
    ack_token = models.CharField(max_length=100, blank=True)
    dedupe_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    tenant_path = "partner"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="webhook_event_dedupe_per_partner",
            )
        ]

    def __str__(self):
        return f"{self.event_type} for {self.partner_id}"


class WebhookDelivery(PartnerScopedModel):
    """One event on its way to one endpoint, at most one per pair.

    ``pending``: not yet attempted; ``failed``: the last attempt failed and another is due at
    ``next_attempt_at``; ``succeeded``: the endpoint answered 2xx; ``gave_up``: the attempts ran
    out or the delivery cannot be made (endpoint disabled, address refused). A worker claims a
    due delivery by moving ``next_attempt_at`` past its own time limit, so that a lost worker's
    delivery comes due again and is re-enqueued by the sweep. ``attempts`` counts the attempts
    of the current round; a manual redelivery starts a new round."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed, will retry"
        GAVE_UP = "gave_up", "Gave up"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_response_excerpt = models.CharField(max_length=500, blank=True)
    acknowledged_signature_ok = models.BooleanField(
        null=True, blank=True, help_text="Whether the receiver's Clearinghouse-Ack verified."
    )
    redeliveries = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    tenant_path = "endpoint__partner"

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_endpoint"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "gave_up"]),
                name="webhook_delivery_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "failed"]),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self):
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(PartnerScopedModel):
    """One HTTP attempt of a delivery: the delivery log a partner reads to debug its receiver."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    manual = models.BooleanField(default=False, help_text="Part of a manual redelivery round.")
    attempted_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    tenant_path = "delivery__endpoint__partner"

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"
