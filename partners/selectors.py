"""Reads for partners, staff and credentials, always restricted to one partner."""

from __future__ import annotations

from django.core import signing
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from clearinghouse.common.api.params import is_uuid

from .models import ApiCredential, Invitation, Membership, Partner, PartnerEvent, User

INVITATION_SALT = "partners.invitation"


def active_partner_by_slug(slug: str) -> Partner | None:
    """An active partner by its public slug, or None. Any partner may name another as the
    recipient of a consent it collected; only active partners can be named."""
    partners = Partner.objects.unscoped("naming a counterpart needs no access to its objects")
    return partners.filter(slug=slug, status=Partner.Status.ACTIVE).first()


def membership_for_user(user: object) -> Membership | None:
    """The user's membership with its partner, or None for operators, anonymous users and
    API keys (the browsable API renders the portal's navigation for a key's request too)."""
    if not isinstance(user, User) or not user.is_authenticated:
        return None
    try:
        return (
            Membership.objects.unscoped("the signed-in user's own membership names their partner")
            .select_related("partner")
            .get(user=user)
        )
    except Membership.DoesNotExist:
        return None


def partner_overview(*, partner: Partner) -> dict[str, int]:
    """The numbers on the portal dashboard."""
    now = timezone.now()
    staff = Membership.objects.for_partner(partner).aggregate(
        total=Count("pk"), admins=Count("pk", filter=Q(role="admin"))
    )
    credentials = ApiCredential.objects.for_partner(partner).aggregate(
        total=Count("pk"),
        active=Count(
            "pk",
            filter=Q(revoked_at__isnull=True)
            & (Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
        ),
    )
    open_invitations = (
        Invitation.objects.for_partner(partner)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
        .count()
    )
    return {
        "staff": staff["total"],
        "admins": staff["admins"],
        "credentials": credentials["total"],
        "active_credentials": credentials["active"],
        "open_invitations": open_invitations,
    }


def staff_list(*, partner: Partner) -> QuerySet[Membership]:
    return Membership.objects.for_partner(partner).select_related("user").order_by("user__email")


def mail_recipients(*, partner: Partner) -> list[str]:
    """Where the clearinghouse writes to a partner: its contact address and its admins."""
    admins = partner.memberships.select_related("user").filter(role="admin")
    return sorted({partner.contact_email, *(m.user.email for m in admins)} - {""})


def open_invitations(*, partner: Partner) -> QuerySet[Invitation]:
    return Invitation.objects.for_partner(partner).filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )


def credential_list(*, partner: Partner) -> QuerySet[ApiCredential]:
    return ApiCredential.objects.for_partner(partner).select_related("created_by")


def partner_activity(*, partner: Partner, limit: int = 100) -> QuerySet[PartnerEvent]:
    return PartnerEvent.objects.for_partner(partner).select_related("actor")[:limit]


def invitation_token(invitation: Invitation) -> str:
    """The signed token in an invitation link: the id, nothing secret, tamper-proof."""
    return signing.dumps(str(invitation.pk), salt=INVITATION_SALT)


def invitation_from_token(token: str) -> Invitation | None:
    """The open invitation a link names, or None for a forged, expired or used link."""
    try:
        invitation_id = signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature:
        return None
    invitation = (
        Invitation.objects.unscoped("the signed link names the invitation; no staff yet")
        .select_related("partner")
        .filter(pk=invitation_id)
        .first()
        if is_uuid(invitation_id)
        else None
    )
    if invitation is None or not invitation.is_open:
        return None
    return invitation
