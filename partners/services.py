"""Writes for partners, staff and credentials.

Each service validates, writes, appends its ``PartnerEvent`` in the same transaction, and
enqueues e-mail with ``transaction.on_commit`` so that nothing is sent for a change that rolled
back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from clearinghouse.common.sql import columns, take

from .models import (
    ApiCredential,
    Invitation,
    Membership,
    Partner,
    PartnerEvent,
    Role,
    Scope,
    User,
)

KEY_PREFIX = "chk"


def partner_event_record(
    *,
    partner: Partner,
    action: str,
    actor: User | None = None,
    credential: ApiCredential | None = None,
    **detail: object,
) -> PartnerEvent:
    """Append one entry to the partner's audit trail."""
    return PartnerEvent.objects.create(
        partner=partner, action=action, actor=actor, credential=credential, detail=detail
    )


def _unique_slug(name):
    base = slugify(name)[:50] or "partner"
    slug, n = base, 1
    taken = Partner.objects.unscoped("a new partner's slug differs from every other's")
    while taken.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def partner_register(
    *,
    name: str,
    kind: str,
    contact_email: str,
    admin_email: str,
    admin_password: str,
    admin_name: str = "",
) -> tuple[Partner, User]:
    """Self-registration: a pending partner and its first admin. The operator approves later."""
    admin_email = User.objects.normalize_email(admin_email)
    if User.objects.filter(email=admin_email).exists():
        raise ValidationError(
            {"admin_email": "An account with this e-mail address already exists."}
        )
    if kind not in Partner.Kind.values:
        raise ValidationError({"kind": "Choose manufacturer or retailer."})
    partner = Partner(
        name=name.strip(), slug=_unique_slug(name), kind=kind, contact_email=contact_email
    )
    partner.full_clean()
    user = User(email=admin_email, full_name=admin_name.strip())
    user.full_clean(exclude=["password"])
    partner.save()
    user.set_password(admin_password)
    user.save()
    Membership.objects.create(user=user, partner=partner, role=Role.ADMIN)
    partner_event_record(partner=partner, action="partner.registered", actor=user)
    return partner, user


def _partner_set_status(*, partner, status, actor, reason=""):
    with transaction.atomic():
        partner = Partner.objects.for_partner(partner).select_for_update().get()
        if partner.status == status:
            return partner
        previous = partner.status
        partner.status = status
        partner.status_changed_at = timezone.now()
        partner.save(update_fields=["status", "status_changed_at"])
        partner_event_record(
            partner=partner,
            action=f"partner.{status}",
            actor=actor,
            previous=previous,
            reason=reason,
        )
        from .tasks import send_partner_status_email

        transaction.on_commit(lambda: send_partner_status_email.delay(str(partner.pk)), robust=True)
    return partner


def partner_approve(*, partner: Partner, actor: User | None) -> Partner:
    """Operator approval: the partner becomes active and its registrant is told by e-mail."""
    return _partner_set_status(partner=partner, status=Partner.Status.ACTIVE, actor=actor)


def partner_suspend(*, partner: Partner, actor: User | None, reason: str = "") -> Partner:
    """Operator suspension: from the next request on, the partner's staff and keys are refused."""
    return _partner_set_status(
        partner=partner, status=Partner.Status.SUSPENDED, actor=actor, reason=reason
    )


# --- staff ------------------------------------------------------------------------------------


@transaction.atomic
def staff_invite(*, partner: Partner, email: str, role: str, invited_by: User) -> Invitation:
    """Invite a colleague by e-mail. One open invitation per address and partner."""
    email = User.objects.normalize_email(email)
    if role not in Role.values:
        raise ValidationError({"role": "Unknown role."})
    staff = Membership.objects.unscoped("a person belongs to one organisation at most")
    if staff.filter(user__email=email).exists():
        raise ValidationError({"email": "This person already belongs to an organisation."})
    Invitation.objects.for_partner(partner).filter(
        email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    invitation = Invitation(
        partner=partner,
        email=email,
        role=role,
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    # The column's limits, not only the form's: an address the form took (RFC 5321 allows 320
    # characters) but the column cannot hold is a form error, not a database error.
    invitation.full_clean(validate_constraints=False)
    invitation.save()
    partner_event_record(
        partner=partner, action="staff.invited", actor=invited_by, email=email, role=role
    )
    from .tasks import send_invitation_email

    transaction.on_commit(lambda: send_invitation_email.delay(str(invitation.pk)), robust=True)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User | None) -> Invitation:
    """Withdraw an open invitation; its link stops working."""
    if invitation.accepted_at or invitation.revoked_at:
        return invitation
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    partner_event_record(
        partner=invitation.partner,
        action="staff.invitation_revoked",
        actor=actor,
        email=invitation.email,
    )
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, password: str, full_name: str = "") -> User:
    """The invited person sets a password and joins the partner with the invited role."""
    invitation = (
        Invitation.objects.for_partner(invitation.partner).select_for_update().get(pk=invitation.pk)
    )
    if not invitation.is_open:
        raise ValidationError("This invitation is no longer valid. Ask your admin for a new one.")
    if User.objects.filter(email=invitation.email).exists():
        raise ValidationError("An account with this e-mail address already exists.")
    user = User(email=invitation.email, full_name=full_name.strip())
    user.full_clean(exclude=["password"])
    user.set_password(password)
    user.save()
    Membership.objects.create(user=user, partner=invitation.partner, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    partner_event_record(
        partner=invitation.partner, action="staff.joined", actor=user, role=invitation.role
    )
    return user


def _ensure_an_admin_remains(membership):
    others = (
        Membership.objects.for_partner(membership.partner)
        .filter(role=Role.ADMIN)
        .exclude(pk=membership.pk)
    )
    if not others.exists():
        raise ValidationError("The organisation needs at least one admin.")


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: User | None) -> Membership:
    """Change a colleague's role; the last admin cannot be demoted."""
    if role not in Role.values:
        raise ValidationError({"role": "Unknown role."})
    membership = (
        Membership.objects.for_partner(membership.partner).select_for_update().get(pk=membership.pk)
    )
    if membership.role == role:
        return membership
    if membership.role == Role.ADMIN:
        _ensure_an_admin_remains(membership)
    previous = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    partner_event_record(
        partner=membership.partner,
        action="staff.role_changed",
        actor=actor,
        email=membership.user.email,
        previous=previous,
        role=role,
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User | None) -> None:
    """Remove a colleague from the organisation; the account is deactivated with it."""
    membership = (
        Membership.objects.for_partner(membership.partner).select_for_update().get(pk=membership.pk)
    )
    if membership.role == Role.ADMIN:
        _ensure_an_admin_remains(membership)
    user = membership.user
    partner = membership.partner
    membership.delete()
    user.is_active = False
    user.save(update_fields=["is_active"])
    partner_event_record(partner=partner, action="staff.removed", actor=actor, email=user.email)


# --- API credentials ----------------------------------------------------------------------------


def _hash_secret(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedCredential:
    credential: ApiCredential
    key: str  # shown once, never stored


@transaction.atomic
def credential_create(
    *,
    partner: Partner,
    name: str,
    scopes: Iterable[str],
    created_by: User | None,
    expires_at: datetime | None = None,
) -> IssuedCredential:
    """Issue a new API key. Returns the credential and the key, which exists nowhere else."""
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValidationError({"scopes": f"Unknown scopes: {', '.join(sorted(unknown))}."})
    if not scopes:
        raise ValidationError({"scopes": "Choose at least one scope."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    for _ in range(5):
        prefix = secrets.token_hex(6)
        taken = ApiCredential.objects.unscoped("a key's prefix differs from every partner's keys'")
        if not taken.filter(prefix=prefix).exists():
            break
    secret = secrets.token_urlsafe(32)
    credential = ApiCredential(
        partner=partner,
        name=name.strip(),
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        scopes=scopes,
        created_by=created_by,
        expires_at=expires_at,
    )
    credential.full_clean()
    try:
        credential.save()
    except IntegrityError as exc:  # a prefix collision between the check and the insert
        raise ValidationError("Could not issue a key, please try again.") from exc
    partner_event_record(
        partner=partner,
        action="credential.created",
        actor=created_by,
        credential=credential,
        name=credential.name,
        scopes=scopes,
    )
    return IssuedCredential(credential=credential, key=f"{KEY_PREFIX}_{prefix}_{secret}")


@transaction.atomic
def credential_revoke(
    *,
    credential: ApiCredential,
    actor: User | None = None,
    by_credential: ApiCredential | None = None,
    reason: str = "",
) -> ApiCredential:
    """Revoke a key for good. Revoking twice is harmless."""
    credential = (
        ApiCredential.objects.for_partner(credential.partner)
        .select_for_update()
        .get(pk=credential.pk)
    )
    if credential.revoked_at:
        return credential
    credential.revoked_at = timezone.now()
    credential.revoked_by = actor
    credential.save(update_fields=["revoked_at", "revoked_by"])
    partner_event_record(
        partner=credential.partner,
        action="credential.revoked",
        actor=actor,
        credential=by_credential or credential,
        name=credential.name,
        prefix=credential.prefix,
        reason=reason,
    )
    return credential


class CredentialRefused(Exception):
    """Why a presented key was refused. ``code`` is stable; ``message`` is for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


LAST_USED_RESOLUTION = timedelta(seconds=60)


def _credential_by_prefix(prefix):
    """The credential with this prefix, its partner loaded, or None. Written out because
    every API request asks it, and composing the query with the ORM took longer than
    PostgreSQL took to answer it (one unique-index lookup)."""
    sql = f"""SELECT {columns(ApiCredential, "c")}, {columns(Partner, "p")}
        FROM {ApiCredential._meta.db_table} c JOIN {Partner._meta.db_table} p ON p.id = c.partner_id
        WHERE c.prefix = %s"""  # noqa: S608 (names only)
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    credential, rest = take(ApiCredential, row)
    credential.partner, _ = take(Partner, rest)
    return credential


def credential_authenticate(*, key: str) -> ApiCredential:
    """Find the credential for a presented key, or raise ``CredentialRefused``.

    An unknown prefix and a wrong secret give the same answer. ``last_used_at`` is written at
    most once a minute per key so that authentication does not cost a write per request.
    """
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        raise CredentialRefused(
            "malformed", "The API key is malformed: expected chk_<prefix>_<secret>."
        )
    credential = _credential_by_prefix(parts[1])
    presented = _hash_secret(parts[2])
    expected = credential.secret_hash if credential else _hash_secret("")
    if not hmac.compare_digest(presented, expected) or credential is None:
        raise CredentialRefused("invalid", "The API key is not valid.")
    now = timezone.now()
    if credential.revoked_at:
        raise CredentialRefused("revoked", "The API key has been revoked.")
    if credential.expires_at and credential.expires_at <= now:
        raise CredentialRefused("expired", "The API key has expired.")
    if not credential.last_used_at or now - credential.last_used_at > LAST_USED_RESOLUTION:
        ApiCredential.objects.for_partner(credential.partner).filter(pk=credential.pk).update(
            last_used_at=now
        )
        credential.last_used_at = now

    return credential
