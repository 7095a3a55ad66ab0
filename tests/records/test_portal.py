"""Portal pages for records: search, timelines, CSV upload with its error report."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clearinghouse.records.csv_upload import safe_cell
from clearinghouse.records.models import InteractionRecord, RecordUpload
from clearinghouse.records.services import records_ingest
from consent.models import AccessLogEntry
from partners.models import Role

from .conftest import consent, registration, sale

CSV_HEADER = "external_id,kind,occurred_at,customer_kind,customer_value,gtin,serial,price_cents,currency,warranty_months\n"


def test_search_by_serial_then_unit_timeline(pair, client):
    records_ingest(partner=pair.shop, rows=[sale("S-1")], max_rows=10)
    records_ingest(partner=pair.maker, rows=[registration("W-1")], max_rows=10)
    consent(pair.maker)
    client.force_login(pair.maker_admin)
    found = client.get("/portal/records/", {"q": "SN-1"})
    assert b"/portal/units/04012345678901/SN-1/" in found.content
    page = client.get("/portal/units/04012345678901/SN-1/").content.decode()
    assert "recorded by Shop" in page and "recorded by you" in page
    assert "49900" not in page  # the price is not in the clause
    # The search listed a unit of the shop's customer, then the timeline showed her record.
    assert AccessLogEntry.objects.filter(partner=pair.maker, channel="portal").count() == 2


def test_search_by_gtin_and_by_customer(pair, client):
    records_ingest(partner=pair.shop, rows=[sale("S-1")], max_rows=10)
    client.force_login(pair.shop_admin)
    assert b"SN-1" in client.get("/portal/records/", {"q": "4012345678901"}).content
    response = client.get("/portal/records/", {"q": "alice@example.org"})
    assert b"Open the customer timeline" in response.content
    assert b"No customer" in client.get("/portal/records/", {"q": "nobody@example.org"}).content
    assert b"wrong check digit" in client.get("/portal/records/", {"q": "4012345678902"}).content


def test_counts_on_the_records_page(pair, client):
    records_ingest(
        partner=pair.shop,
        rows=[sale("S-1"), sale("S-2", email="bob@example.org", serial="2")],
        max_rows=10,
    )
    consent(pair.maker)
    client.force_login(pair.shop_admin)
    counts = client.get("/portal/records/").context["counts"]
    assert counts == {"submitted": 2, "received": 0, "shared": 1}


def test_invisible_unit_shows_nothing_to_a_third_partner(pair, make_partner, client):
    records_ingest(partner=pair.shop, rows=[sale("S-1")], max_rows=10)
    consent(pair.maker)
    _third, third_admin = make_partner(name="Third")
    client.force_login(third_admin)
    page = client.get("/portal/units/04012345678901/SN-1/").content.decode()
    assert "Nothing you may see" in page and "Shop" not in page


def _upload(client, text, name="records.csv"):
    data = text if isinstance(text, bytes) else text.encode()
    return client.post(
        "/portal/records/upload/", {"file": SimpleUploadedFile(name, data, "text/csv")}
    )


def test_csv_upload_creates_records_and_reports_errors(
    pair, client, django_capture_on_commit_callbacks
):
    client.force_login(pair.shop_admin)
    text = CSV_HEADER + (
        "S-1,sale,2026-10-01T12:00:00Z,email,alice@example.org,4012345678901,SN-1,49900,EUR,\n"
        "S-2,sale,2026-10-01T12:00:00Z,email,bob@example.org,4012345678902,SN-2,100,EUR,\n"
        '=HYPERLINK("x"),sale,2026-10-01T12:00:00Z,email,carol@example.org,4012345678901,SN-3,abc,EUR,\n'
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, text)
    assert response.status_code == 302
    upload = RecordUpload.objects.unscoped("test setup").get()
    assert (upload.status, upload.created, upload.rejected) == ("done", 1, 2)
    status_page = client.get(response["Location"]).content.decode()
    assert "Download the error report" in status_page and "wrong check digit" in status_page
    report = client.get(f"/portal/records/uploads/{upload.pk}/errors.csv").content.decode()
    assert "'=HYPERLINK" in report and "\n4,=" not in report  # formulas are defused
    assert InteractionRecord.objects.unscoped("test setup").get().external_id == "S-1"
    with django_capture_on_commit_callbacks(execute=True):
        _upload(client, text)  # the same file again creates nothing twice
    assert InteractionRecord.objects.unscoped("test setup").count() == 1
    assert RecordUpload.objects.unscoped("test setup").first().existing == 1


@pytest.mark.parametrize(
    "text,message",
    [("", "empty"), ("just,a,header\n", "at least external_id"), (b"\xff\xfe\x00a", "UTF-8")],
)
def test_bad_csv_files_fail_clearly(
    pair, client, django_capture_on_commit_callbacks, text, message
):
    client.force_login(pair.shop_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, text)
    if response.status_code == 400:
        assert message.lower() in response.content.decode().lower()
    else:
        upload = RecordUpload.objects.unscoped("test setup").get()
        assert upload.status == "failed" and message in upload.message
    assert not InteractionRecord.objects.unscoped("test setup").exists()


def test_viewers_cannot_upload(pair, add_staff, client):
    viewer = add_staff(pair.shop, Role.VIEWER, pair.shop_admin)
    client.force_login(viewer)
    assert _upload(client, CSV_HEADER).status_code == 403
    assert not RecordUpload.objects.unscoped("test setup").exists()


def test_another_partners_upload_is_404(pair, client, django_capture_on_commit_callbacks):
    client.force_login(pair.shop_admin)
    with django_capture_on_commit_callbacks(execute=True):
        _upload(client, CSV_HEADER)
    upload = RecordUpload.objects.unscoped("test setup").get()
    client.force_login(pair.maker_admin)
    assert client.get(f"/portal/records/uploads/{upload.pk}/").status_code == 404
    assert client.get(f"/portal/records/uploads/{upload.pk}/errors.csv").status_code == 404


def test_safe_cell_defuses_formulas():
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("@SUM") == "'@SUM" and safe_cell("ok") == "ok"
