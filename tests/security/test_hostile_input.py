"""Hostile input in the portal's forms and the dashboard: markup in every text field is shown
escaped wherever it appears, overlong values and wrong body types get clear answers (never a
500), and every CSV the product writes defuses spreadsheet formulas."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from clearinghouse.demo.partners import AGREEMENT_V1
from clearinghouse.reconciliation.models import Discrepancy
from clearinghouse.records.csv_upload import error_report
from clearinghouse.records.models import RecordUpload
from partners import agreements, selectors, services
from partners.models import Role, SharingAgreement
from tests.security.pages import Walk
from tests.test_platform import ROOT

PAYLOAD = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
RAW = re.compile(r"<script>alert|<img src=x onerror", re.IGNORECASE)
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PASSWORD = "a-long-password-123"
UPLOAD_COLUMNS = ["external_id", "kind", "occurred_at", "customer_kind", "customer_value"]
CONDITIONS = '[{"kind": "threshold", "metric": "power_w", "op": ">", "value": 1, "minutes": 5}]'


class HostileWalk(Walk):
    """Fails a page that shows the payload unescaped; notes the pages that show it escaped."""

    def __init__(self):
        super().__init__(per_route=3)
        self.escaped = set()

    def check(self, url, response):
        super().check(url, response)
        body = response.content.decode(errors="replace")
        if RAW.search(body):
            self.problems.append(f"{url}: the payload unescaped")
        if ESCAPED in body:
            # After a redirect, the page shown is the last one requested.
            self.escaped.add(response.request.get("PATH_INFO") or url.split("?")[0])


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_markup_in_every_text_field_is_shown_escaped(demo, django_capture_on_commit_callbacks):
    maker, shop = demo.partners["maker"], demo.partners["shop"]
    m, s = signed_in(demo.admin), signed_in(demo.user("admin@brightmart.example"))
    walk = HostileWalk()

    walk.post(m, "/portal/credentials/new/", {"name": PAYLOAD, "scopes": ["records:read"]})
    walk.post(
        m,
        "/portal/webhooks/new/",
        {
            "url": "https://hooks.example.com/in",
            "description": PAYLOAD,
            "event_types": ["discrepancy.opened"],
        },
    )
    discrepancy = Discrepancy.objects.for_partner(maker).first()
    walk.post(m, f"/portal/discrepancies/{discrepancy.pk}/", {"action": "comment", "text": PAYLOAD})
    walk.post(
        m,
        "/portal/service-rules/",
        {
            "model_name": PAYLOAD,
            "name": PAYLOAD,
            "issue": PAYLOAD,
            "prompt_text": PAYLOAD,
            "operator": "and",
            "conditions": CONDITIONS,
        },
    )
    agreement = SharingAgreement.objects.for_partner(maker).get()
    walk.post(m, f"/portal/agreements/{agreement.pk}/reject/", {"version": "2", "reason": PAYLOAD})
    agreements.agreement_propose(
        proposer=maker, counterpart=shop, clauses=AGREEMENT_V1[:-1], actor=demo.admin, note=PAYLOAD
    )
    out = io.StringIO()
    csv.writer(out).writerows([UPLOAD_COLUMNS, [PAYLOAD, "sale", "not-a-date", "email", PAYLOAD]])
    rows = out.getvalue().encode()
    with django_capture_on_commit_callbacks(execute=True):  # the upload is read by a task
        walk.post(m, "/portal/records/upload/", {"file": SimpleUploadedFile("r.csv", rows)})
    invitation = services.staff_invite(
        partner=maker, email="mallory@nordwind.example", role=Role.VIEWER, invited_by=demo.admin
    )
    token = selectors.invitation_token(invitation)
    joined = Client()
    walk.post(
        joined,
        f"/portal/join/{token}/",
        {"full_name": PAYLOAD, "password1": PASSWORD, "password2": PASSWORD},
    )
    registrant = Client()
    walk.post(
        registrant,
        "/portal/register/",
        {
            "name": PAYLOAD,
            "kind": "retailer",
            "contact_email": "c@evil.example",
            "admin_name": PAYLOAD,
            "admin_email": "a@evil.example",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    anonymous = Client()
    walk.post(anonymous, "/me/", {"email": PAYLOAD})
    walk.post(anonymous, "/accounts/login/", {"username": PAYLOAD, "password": PAYLOAD})
    walk.post(anonymous, "/accounts/password_reset/", {"email": PAYLOAD})

    walk.run(m, "/portal/", f"/portal/discrepancies/{discrepancy.pk}/")
    walk.run(s, "/portal/", f"/portal/discrepancies/{discrepancy.pk}/")
    walk.run(registrant, "/portal/")
    operator = signed_in(demo.user("operator@clearinghouse.example"))
    walk.run(operator, "/admin/partners/partner/", "/admin/partners/user/")
    customer = Client()
    with django_capture_on_commit_callbacks(execute=True):
        customer.post("/me/", {"email": "alice@example.org"})
    link = mail.outbox[-1].body.split("/me/link/")[1].split("/")[0]
    walk.post(customer, f"/me/link/{link}/", {})
    walk.run(customer, "/me/overview/")

    assert not walk.problems, "\n".join(walk.problems)
    expected = {
        "/portal/credentials/",  # key name
        "/portal/webhooks/",  # description
        f"/portal/discrepancies/{discrepancy.pk}/",  # comment
        "/portal/service-rules/",  # rule name, issue, prompt
        f"/portal/agreements/{agreement.pk}/",  # rejection reason, note
        "/portal/staff/",  # colleague's name
        "/admin/partners/partner/",  # organisation name
        "/me/",  # the typed address, in the form again
        "/accounts/login/",
    }
    assert expected <= walk.escaped, sorted(expected - walk.escaped)
    upload = RecordUpload.objects.for_partner(maker).get()
    assert f"/portal/records/uploads/{upload.pk}/" in walk.escaped


OVERLONG = "x" * 20000


@pytest.mark.parametrize(
    ("path", "data", "who"),
    [
        ("/portal/register/", {"name": OVERLONG, "admin_name": OVERLONG}, None),
        ("/portal/credentials/new/", {"name": OVERLONG, "scopes": ["records:read"]}, "admin"),
        (
            "/portal/webhooks/new/",
            {"url": "https://h.example/" + OVERLONG, "description": OVERLONG},
            "admin",
        ),
        (
            "/portal/service-rules/",
            {"model_name": "m", "name": OVERLONG, "issue": "i", "conditions": OVERLONG},
            "admin",
        ),
        ("/portal/staff/invite/", {"email": OVERLONG + "@example.org", "role": "viewer"}, "admin"),
        ("/me/", {"email": OVERLONG + "@example.org"}, None),
        ("/accounts/login/", {"username": OVERLONG, "password": OVERLONG}, None),
        ("/accounts/password_reset/", {"email": OVERLONG + "@example.org"}, None),
    ],
)
def test_overlong_values_get_a_form_error_not_a_500(path, data, who, demo):
    client = signed_in(demo.admin) if who else Client()
    response = client.post(path, data)
    assert response.status_code in (200, 400), response.status_code
    body = response.content.decode()
    assert re.search(r"at most \d+ characters|valid email|correct email", body), body[-2000:]


def test_overlong_discrepancy_comments_and_agreement_reasons_are_refused(demo):
    maker = demo.partners["maker"]
    client = signed_in(demo.admin)
    discrepancy = Discrepancy.objects.for_partner(maker).first()
    response = client.post(
        f"/portal/discrepancies/{discrepancy.pk}/", {"action": "comment", "text": OVERLONG}
    )
    assert response.status_code == 400 and b"at most 2000 characters" in response.content
    agreement = SharingAgreement.objects.for_partner(maker).get()
    response = client.post(
        f"/portal/agreements/{agreement.pk}/reject/",
        {"version": "2", "reason": OVERLONG},
        follow=True,
    )
    assert response.status_code == 200 and b"at most 500 characters" in response.content
    assert agreement.versions.get(number=2).status == "proposed"


@pytest.mark.parametrize(
    "path",
    ["/portal/credentials/new/", "/portal/webhooks/new/", "/me/", "/accounts/login/", "/me/erase/"],
)
@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/xml", "text/csv"]
)
def test_form_pages_answer_415_to_other_body_types(path, content_type, demo):
    client = signed_in(demo.admin)
    response = client.post(path, '{"name": "x"}', content_type=content_type)
    assert response.status_code == 415 and b"form submissions only" in response.content


def test_an_empty_or_broken_multipart_body_is_a_400_not_a_500(demo):
    client = signed_in(demo.admin)
    response = client.post(
        "/portal/credentials/new/", b"--nope\r\n", content_type="multipart/form-data"
    )
    assert response.status_code == 400


def test_every_csv_the_product_writes_defuses_formulas():
    writers = [
        path
        for package in ["partners", "consent", "telemetry", "clearinghouse"]
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text())
    ]
    assert writers, "no CSV writer found: update this test"
    for path in writers:
        assert "safe_cell(" in path.read_text(), f"{Path(path).relative_to(ROOT)} writes raw cells"


def test_the_upload_error_report_defuses_every_formula_prefix():
    upload = RecordUpload(
        errors=[
            {
                "line": n,
                "external_id": prefix + "cmd|' /C calc'!A0",
                "field": "kind",
                "message": "x",
            }
            for n, prefix in enumerate(["=", "+", "-", "@", "\t=", "\r="], start=2)
        ]
    )
    rows = list(csv.reader(io.StringIO(error_report(upload))))[1:]
    assert len(rows) == 6 and all(row[1].startswith("'") for row in rows), rows
