"""Telemetry reads hold tenancy with real checks, which ``python -O`` cannot strip."""

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from telemetry import selectors
from telemetry.models import Device
from tests.support.waiting import run

from .conftest import register

ROOT = Path(__file__).resolve().parents[2]


def test_device_series_answers_another_partners_device_as_missing(fleet):
    (device,) = register(fleet.maker, "SER-1")
    end = timezone.now()
    with pytest.raises(Device.DoesNotExist):
        selectors.device_series(
            partner=fleet.other, device=device, start=end - timedelta(days=7), end=end
        )
    assert (
        selectors.device_series(
            partner=fleet.maker, device=device, start=end - timedelta(days=7), end=end
        )
        == {}
    )


def test_device_series_refuses_another_partners_device_under_python_optimisations():
    """``python -O`` drops ``assert`` statements: the check must be an ``if``."""
    script = """
import uuid
import django
django.setup()
from partners.models import Partner
from telemetry.models import Device
from telemetry.selectors import device_series
from django.utils import timezone
device = Device(pk=1, manufacturer_id=uuid.uuid4(), serial="SER-1")
try:
    device_series(partner=Partner(pk=uuid.uuid4()), device=device, start=None, end=timezone.now())
except Device.DoesNotExist:
    print("refused")
"""
    result = run(
        [sys.executable, "-O", "-c", script],
        what="device_series under python -O",
        check=False,
        cwd=ROOT,
        text=True,
    )
    assert result.stdout.strip() == "refused", result.stderr[-2000:]
