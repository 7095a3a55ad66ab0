"""Portal pages: registration, sign-in, roles, staff, keys, tenancy."""

import pytest

from partners import selectors, services
from partners.models import ApiCredential, Membership, Partner, Role, User

PASSWORD = "a-long-password-123"


def registration(**overrides):
    data = {
        "name": "Acme <script>alert(1)</script>",
        "kind": "manufacturer",
        "contact_email": "contact@acme.example",
        "admin_name": "Ada",
        "admin_email": "ada@acme.example",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return data


def test_registration_signs_in_to_a_pending_dashboard(db, client):
    response = client.post("/portal/register/", registration(), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Waiting for approval" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    partner = Partner.objects.unscoped("test setup").get()
    assert partner.status == Partner.Status.PENDING


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"password2": "different-password-1"}, "password2"),
        ({"password1": "short", "password2": "short"}, "password1"),
        ({"kind": "wholesaler"}, "kind"),
        ({"admin_email": "not-an-email"}, "admin_email"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_bad_registration_shows_errors_and_creates_nothing(db, client, overrides, field):
    response = client.post("/portal/register/", registration(**overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Partner.objects.unscoped("test setup").exists() and not User.objects.exists()


def test_pending_partner_sees_only_the_dashboard(make_partner, client):
    _, admin = make_partner(status=Partner.Status.PENDING)
    client.force_login(admin)
    assert client.get("/portal/").status_code == 200
    for url in ["/portal/staff/", "/portal/credentials/", "/portal/credentials/new/"]:
        response = client.get(url)
        assert response.status_code == 403
        assert b"pending" in response.content.lower()


def test_suspended_partners_staff_cannot_sign_in(make_partner, client):
    _, admin = make_partner(status=Partner.Status.SUSPENDED)
    response = client.post("/accounts/login/", {"username": admin.email, "password": PASSWORD})
    assert response.status_code == 200
    assert b"suspended" in response.content
    assert "_auth_user_id" not in client.session


def test_suspension_cuts_off_a_signed_in_session(make_partner, client, operator):
    partner, admin = make_partner()
    client.force_login(admin)
    assert client.get("/portal/staff/").status_code == 200
    services.partner_suspend(partner=partner, actor=operator)
    assert client.get("/portal/staff/").status_code == 403


def test_registration_approval_login_round_trip(db, client, operator):
    client.post("/portal/register/", registration(name="Brightmart"))
    client.logout()
    partner = Partner.objects.unscoped("test setup").get()
    services.partner_approve(partner=partner, actor=operator)
    response = client.post(
        "/accounts/login/", {"username": "ada@acme.example", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert b"Brightmart" in response.content and b"Manage staff" in response.content


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_only_admins_manage_staff_and_keys(make_partner, add_staff, client, role):
    partner, admin = make_partner()
    user = add_staff(partner, role, admin)
    client.force_login(user)
    assert client.get("/portal/staff/").status_code == 200  # everyone may look
    assert client.get("/portal/credentials/").status_code == 200
    assert client.get("/portal/staff/invite/").status_code == 403
    assert (
        client.post(
            "/portal/staff/invite/", {"email": "x@example.org", "role": "admin"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/portal/credentials/new/", {"name": "k", "scopes": ["records:read"]}
        ).status_code
        == 403
    )
    assert (
        client.post(f"/portal/staff/{admin.membership.pk}/", {"role": "viewer"}).status_code == 403
    )
    assert not ApiCredential.objects.unscoped("test setup").exists()
    assert (
        admin.membership.role == Role.ADMIN
        and not partner.invitations.filter(email="x@example.org").exists()
    )


def test_admin_creates_a_key_shown_exactly_once(make_partner, client):
    partner, admin = make_partner()
    client.force_login(admin)
    response = client.post(
        "/portal/credentials/new/", {"name": "ERP", "scopes": ["records:read", "records:write"]}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = response.context["key"]
    assert key.startswith("chk_") and key in response.content.decode()
    listing = client.get("/portal/credentials/").content.decode()
    assert "ERP" in listing and key not in listing
    credential = ApiCredential.objects.for_partner(partner).get()
    assert services.credential_authenticate(key=key) == credential


def test_bad_key_form_changes_nothing(make_partner, client):
    _, admin = make_partner()
    client.force_login(admin)
    for data in [
        {"name": "", "scopes": ["records:read"]},
        {"name": "k", "scopes": ["root"]},
        {"name": "k", "scopes": ["records:read"], "expires_on": "2001-01-01"},
    ]:
        response = client.post("/portal/credentials/new/", data)
        assert response.status_code == 200 and response.context["form"].errors
    assert not ApiCredential.objects.unscoped("test setup").exists()


def test_admin_revokes_a_key_in_the_portal(make_partner, issue_key, client):
    partner, admin = make_partner()
    credential, _ = issue_key(partner, admin)
    client.force_login(admin)
    response = client.post(f"/portal/credentials/{credential.pk}/revoke/", follow=True)
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.revoked_at is not None and credential.revoked_by == admin


def test_foreign_objects_are_404_in_the_portal(make_partner, issue_key, add_staff, client):
    _a, a_admin = make_partner()
    b, b_admin = make_partner(kind=Partner.Kind.RETAILER)
    b_cred, _ = issue_key(b, b_admin)
    b_viewer = add_staff(b, Role.VIEWER, b_admin)
    b_invitation = services.staff_invite(
        partner=b, email="z@example.org", role="viewer", invited_by=b_admin
    )
    client.force_login(a_admin)
    assert client.post(f"/portal/credentials/{b_cred.pk}/revoke/").status_code == 404
    assert (
        client.post(f"/portal/staff/{b_viewer.membership.pk}/", {"action": "remove"}).status_code
        == 404
    )
    assert client.post(f"/portal/invitations/{b_invitation.pk}/revoke/").status_code == 404
    b_cred.refresh_from_db()
    b_invitation.refresh_from_db()
    assert b_cred.revoked_at is None and b_invitation.revoked_at is None
    assert Membership.objects.unscoped("test setup").filter(pk=b_viewer.membership.pk).exists()
    assert b"z@example.org" not in client.get("/portal/staff/").content


def test_invitation_link_lets_a_colleague_join(make_partner, client):
    partner, admin = make_partner()
    client.force_login(admin)
    client.post("/portal/staff/invite/", {"email": "new@example.org", "role": "analyst"})
    client.logout()
    invitation = partner.invitations.get(email="new@example.org")
    url = f"/portal/join/{selectors.invitation_token(invitation)}/"
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"full_name": "New", "password1": PASSWORD, "password2": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert User.objects.get(email="new@example.org").membership.role == Role.ANALYST
    assert client.get(url).status_code == 404  # used


LONG_EMAIL = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".example"  # 317 characters


def test_an_address_longer_than_the_column_is_a_form_error_not_a_500(make_partner, client):
    """A form's EmailField takes the 320 characters RFC 5321 allows; the column holds 254."""
    partner, admin = make_partner()
    client.force_login(admin)
    assert len(LONG_EMAIL) > 254
    response = client.post("/portal/staff/invite/", {"email": LONG_EMAIL, "role": "analyst"})
    assert response.status_code == 200 and "at most 254" in response.content.decode()
    assert not partner.invitations.exists()
    with pytest.raises(services.ValidationError):
        services.staff_invite(partner=partner, email=LONG_EMAIL, role="viewer", invited_by=admin)
    client.logout()
    response = client.post("/portal/register/", registration(admin_email=LONG_EMAIL))
    assert response.status_code == 200 and "at most 254" in response.content.decode()
    with pytest.raises(services.ValidationError):
        services.partner_register(
            name="Long Ltd",
            kind="retailer",
            contact_email="c@long.example",
            admin_email=LONG_EMAIL,
            admin_password=PASSWORD,
        )


def test_forged_invitation_link_is_404(db, client):
    assert client.get("/portal/join/forged-token/").status_code == 404


def test_admin_changes_roles_in_the_portal(make_partner, add_staff, client):
    partner, admin = make_partner()
    viewer = add_staff(partner, Role.VIEWER, admin)
    client.force_login(admin)
    client.post(f"/portal/staff/{viewer.membership.pk}/", {"role": "analyst"})
    viewer.membership.refresh_from_db()
    assert viewer.membership.role == Role.ANALYST
    response = client.post(f"/portal/staff/{admin.membership.pk}/", {"role": "viewer"}, follow=True)
    assert b"at least one admin" in response.content


def test_operator_without_partner_gets_a_clear_page(operator, client):
    client.force_login(operator)
    response = client.get("/portal/")
    assert response.status_code == 403 and b"admin" in response.content


def test_anonymous_portal_visit_redirects_to_sign_in(db, client):
    response = client.get("/portal/credentials/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_password_reset_does_not_reveal_accounts(make_partner, client):
    from django.core import mail

    _, admin = make_partner()
    known = client.post("/accounts/password_reset/", {"email": admin.email}, follow=True)
    unknown = client.post("/accounts/password_reset/", {"email": "nobody@example.org"}, follow=True)
    assert known.content == unknown.content
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [admin.email]
