"""Every HTML page carries a strict Content-Security-Policy and the other browser security headers,
and no page relies on inline script or style (which that policy would block)."""

from pathlib import Path

from django.conf import settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import loader
from django.test import Client

from partners import selectors, services
from partners.models import Role, Scope
from partners.webhooks import selectors as webhook_selectors
from tests.security.pages import Walk, inline_code

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_every_page_has_a_strict_csp_no_inline_code_and_csrf_on_its_forms(
    demo, django_capture_on_commit_callbacks
):
    walk = Walk()
    anonymous = Client()
    walk.run(
        anonymous,
        "/",
        "/accounts/login/",
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/not-a-token/",
        "/accounts/reset/done/",
        "/portal/register/",
        "/portal/join/not-a-token/",
        "/me/",
        "/me/sent/",
        "/me/link/not-a-token/",
        "/no/such/page/",
        "/api/docs/",
        "/api/redoc/",
    )
    walk.post(anonymous, "/me/link/not-a-token/", {})
    walk.check("bad host", anonymous.get("/", HTTP_HOST="evil.example"))
    walk.post(Client(enforce_csrf_checks=True), "/accounts/login/", {"username": "x"})

    for key, email in [("maker", "admin@nordwind.example"), ("shop", "admin@brightmart.example")]:
        staff = Client()
        staff.force_login(demo.user(email))
        walk.run(staff, "/portal/")
        walk.post(
            staff,
            "/portal/credentials/new/",
            {"name": "walk key", "scopes": [Scope.RECORDS_READ]},
        )
        walk.post(
            staff,
            "/portal/webhooks/new/",
            {"url": "https://hooks.example.com/in", "event_types": ["discrepancy.opened"]},
        )
        endpoint = webhook_selectors.endpoint_list(partner=demo.partners[key]).first()
        # A test event: its delivery is recorded (and not sent: this test never commits).
        walk.post(staff, f"/portal/webhooks/{endpoint.pk}/test/", {})
        csv = b"external_id,kind\nx-1,sale\n"
        walk.post(staff, "/portal/records/upload/", {"file": SimpleUploadedFile("r.csv", csv)})
    viewer = Client()
    viewer.force_login(demo.user("viewer@nordwind.example"))
    walk.run(viewer, "/portal/staff/invite/", "/portal/records/upload/")
    maker = demo.partners["maker"]
    invitation = services.staff_invite(
        partner=maker, email="new@nordwind.example", role=Role.VIEWER, invited_by=demo.admin
    )
    walk.run(Client(), f"/portal/join/{selectors.invitation_token(invitation)}/")
    pending = Client()
    pending.force_login(demo.user("admin@sparrow.example"))
    walk.run(pending, "/portal/", "/portal/records/")
    operator = Client()
    operator.force_login(demo.user("operator@clearinghouse.example"))
    walk.run(operator, "/portal/", "/admin/", "/admin/partners/partner/")

    customer = Client()
    with django_capture_on_commit_callbacks(execute=True):
        customer.post("/me/", {"email": "alice@example.org"})
    token = mail.outbox[-1].body.split("/me/link/")[1].split("/")[0]
    walk.run(customer, f"/me/link/{token}/")
    walk.post(customer, f"/me/link/{token}/", {})
    walk.run(customer, "/me/overview/")
    walk.post(customer, "/me/erase/", {"confirm": "ERASE"})

    assert not walk.problems, "\n".join(walk.problems)
    page_templates = {
        str(path.relative_to(TEMPLATES))
        for folder in ["portal", "dashboard", "registration", "."]
        for path in (TEMPLATES / folder).glob("*.html" if folder == "." else "**/*.html")
    }
    # Error pages no walk reaches (no portal page raises PermissionDenied, nothing fails or is
    # unavailable here): their markup is checked as rendered without a request.
    for name in sorted(page_templates - walk.templates):
        if "/" not in name:
            found = inline_code(loader.render_to_string(name))
            assert not found, (name, found)
            walk.templates.add(name)
    unvisited = (
        page_templates
        - walk.templates
        - {
            "registration/password_reset_email.html",  # the body of an e-mail
            "registration/logged_out.html",  # signing out redirects home (LOGOUT_REDIRECT_URL)
        }
    )
    assert not unvisited, "\n".join(
        [*sorted(unvisited), f"{len(walk.visited)} pages:", *walk.visited]
    )
