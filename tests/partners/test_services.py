from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from partners import selectors, services
from partners.models import Invitation, Membership, Partner, PartnerEvent, Role, User


def test_registration_creates_pending_partner_with_its_admin(db):
    partner, user = services.partner_register(
        name="Acme Appliances",
        kind="manufacturer",
        contact_email="c@acme.example",
        admin_email="  Boss@Acme.Example ",
        admin_password="a-long-password-123",
    )
    assert partner.status == Partner.Status.PENDING
    assert partner.slug == "acme-appliances"
    assert user.email == "boss@acme.example"
    assert user.membership.role == Role.ADMIN and user.membership.partner == partner
    assert (
        PartnerEvent.objects.unscoped("test setup")
        .filter(partner=partner, action="partner.registered")
        .exists()
    )


def test_registration_with_taken_email_changes_nothing(db, make_partner):
    _, admin = make_partner()
    before = (Partner.objects.unscoped("test setup").count(), User.objects.count())
    with pytest.raises(ValidationError):
        services.partner_register(
            name="Other",
            kind="retailer",
            contact_email="x@example.org",
            admin_email=admin.email.upper(),
            admin_password="a-long-password-123",
        )
    assert (Partner.objects.unscoped("test setup").count(), User.objects.count()) == before


def test_same_name_gets_a_distinct_slug(db):
    a, _ = services.partner_register(
        name="Same",
        kind="retailer",
        contact_email="a@x.example",
        admin_email="a@x.example",
        admin_password="a-long-password-123",
    )
    b, _ = services.partner_register(
        name="Same",
        kind="retailer",
        contact_email="b@x.example",
        admin_email="b@x.example",
        admin_password="a-long-password-123",
    )
    assert a.slug != b.slug


def test_approval_emails_the_registrant_after_commit(
    db, operator, django_capture_on_commit_callbacks
):
    partner, _admin = services.partner_register(
        name="Brightmart",
        kind="retailer",
        contact_email="contact@bright.example",
        admin_email="admin@bright.example",
        admin_password="a-long-password-123",
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.partner_approve(partner=partner, actor=operator)
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert set(message.to) == {"contact@bright.example", "admin@bright.example"}
    assert "approved" in message.subject
    partner.refresh_from_db()
    assert partner.status == Partner.Status.ACTIVE
    assert (
        PartnerEvent.objects.unscoped("test setup")
        .filter(partner=partner, action="partner.active", actor=operator)
        .exists()
    )


def test_suspension_is_recorded_with_who_and_why(make_partner, operator):
    partner, _ = make_partner()
    services.partner_suspend(partner=partner, actor=operator, reason="unpaid")
    event = PartnerEvent.objects.unscoped("test setup").get(
        partner=partner, action="partner.suspended"
    )
    assert event.actor == operator and event.detail["reason"] == "unpaid"


def test_invitation_round_trip(make_partner, django_capture_on_commit_callbacks):
    partner, admin = make_partner()
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.staff_invite(
            partner=partner, email="New@Example.org", role=Role.ANALYST, invited_by=admin
        )
    assert mail.outbox[-1].to == ["new@example.org"]
    token = mail.outbox[-1].body.split("/portal/join/")[1].split("/")[0]
    assert selectors.invitation_from_token(token) == invitation
    user = services.invitation_accept(invitation=invitation, password="a-long-password-123")
    assert user.membership.role == Role.ANALYST
    assert selectors.invitation_from_token(token) is None  # used links stop working


def test_invitation_token_is_tamper_proof_and_expires(make_partner):
    partner, admin = make_partner()
    invitation = services.staff_invite(
        partner=partner, email="x@example.org", role=Role.VIEWER, invited_by=admin
    )
    token = selectors.invitation_token(invitation)
    assert selectors.invitation_from_token(token[:-2] + "xx") is None
    Invitation.objects.unscoped("test setup").filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert selectors.invitation_from_token(token) is None


def test_reinviting_replaces_the_open_invitation(make_partner):
    partner, admin = make_partner()
    first = services.staff_invite(
        partner=partner, email="x@example.org", role="viewer", invited_by=admin
    )
    second = services.staff_invite(
        partner=partner, email="x@example.org", role="analyst", invited_by=admin
    )
    first.refresh_from_db()
    assert first.revoked_at is not None and second.is_open


def test_last_admin_cannot_be_demoted_or_removed(make_partner, add_staff):
    partner, admin = make_partner()
    membership = admin.membership
    with pytest.raises(ValidationError):
        services.membership_change_role(membership=membership, role=Role.VIEWER, actor=admin)
    with pytest.raises(ValidationError):
        services.membership_remove(membership=membership, actor=admin)
    second = add_staff(partner, Role.ADMIN, admin)
    services.membership_change_role(membership=membership, role=Role.VIEWER, actor=second)
    assert Membership.objects.unscoped("test setup").get(pk=membership.pk).role == Role.VIEWER


def test_removed_staff_can_no_longer_sign_in(make_partner, add_staff, client):
    partner, admin = make_partner()
    viewer = add_staff(partner, Role.VIEWER, admin)
    services.membership_remove(membership=viewer.membership, actor=admin)
    viewer.refresh_from_db()
    assert not viewer.is_active
    assert not client.login(email=viewer.email, password="a-long-password-123")


def test_key_is_stored_only_as_a_hash(make_partner, issue_key):
    partner, admin = make_partner()
    credential, key = issue_key(partner, admin)
    secret = key.split("_", 2)[2]
    assert secret not in credential.secret_hash and len(credential.secret_hash) == 64
    assert services.credential_authenticate(key=key) == credential


def test_key_refusals_name_the_reason(make_partner, issue_key):
    partner, admin = make_partner()
    credential, key = issue_key(partner, admin)
    for bad, code in [
        ("nonsense", "malformed"),
        (key + "x", "invalid"),
        ("chk_000000000000_x", "invalid"),
    ]:
        with pytest.raises(services.CredentialRefused) as refused:
            services.credential_authenticate(key=bad)
        assert refused.value.code == code
    services.credential_revoke(credential=credential, actor=admin)
    with pytest.raises(services.CredentialRefused) as refused:
        services.credential_authenticate(key=key)
    assert refused.value.code == "revoked"


def test_expired_key_is_refused(make_partner, issue_key):
    partner, admin = make_partner()
    credential, key = issue_key(partner, admin, expires_at=timezone.now() + timedelta(hours=1))
    type(credential).objects.unscoped("test setup").filter(pk=credential.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(services.CredentialRefused) as refused:
        services.credential_authenticate(key=key)
    assert refused.value.code == "expired"


def test_key_with_unknown_scope_or_past_expiry_is_not_issued(make_partner):
    partner, admin = make_partner()
    with pytest.raises(ValidationError):
        services.credential_create(partner=partner, name="k", scopes=["root"], created_by=admin)
    with pytest.raises(ValidationError):
        services.credential_create(
            partner=partner,
            name="k",
            scopes=["records:read"],
            created_by=admin,
            expires_at=timezone.now() - timedelta(days=1),
        )
    assert not partner.credentials.exists()


def test_last_used_is_written_at_most_once_a_minute(
    make_partner, issue_key, django_assert_num_queries
):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin)
    with django_assert_num_queries(2):  # lookup + last_used update
        services.credential_authenticate(key=key)
    with django_assert_num_queries(1):  # lookup only
        services.credential_authenticate(key=key)


def test_expire_invitations_task_closes_old_invitations(make_partner):
    from partners.tasks import expire_invitations

    partner, admin = make_partner()
    invitation = services.staff_invite(
        partner=partner, email="o@example.org", role="viewer", invited_by=admin
    )
    Invitation.objects.unscoped("test setup").filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert expire_invitations() == 1
    assert expire_invitations() == 0  # idempotent
