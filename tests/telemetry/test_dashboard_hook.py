"""The customer dashboard shows telemetry prompts through the settings hook."""

import time

from consent.dashboard.views import SESSION_KEY, SESSION_UNTIL
from telemetry.models import CustomerPrompt
from tests.records.conftest import consent

from .conftest import register
from .test_care import _trip, _unit_registered


def test_dashboard_overview_lists_a_pending_prompt(fleet, client, settings):
    assert "telemetry.prompts.pending_for_customer" in settings.CUSTOMER_PROMPTS_PROVIDERS
    (device,) = register(fleet.maker, "A")
    _unit_registered(fleet)
    consent(fleet.shop, purpose="service", categories=["service", "telemetry"])
    prompt = CustomerPrompt.objects.get(signal=_trip(fleet, device))
    session = client.session
    session[SESSION_KEY] = str(prompt.customer_id)
    session[SESSION_UNTIL] = time.time() + 600
    session.save()
    page = client.get("/me/overview/")
    assert page.status_code == 200
    assert "book a free check" in page.content.decode()
