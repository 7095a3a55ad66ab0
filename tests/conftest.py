"""Shared fixtures. State is built through the real services, as a partner would build it."""

import itertools

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from partners import services
from partners.models import Partner, Role, Scope, User

_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in Redis; each test starts with none."""
    cache.clear()
    yield


@pytest.fixture
def operator(db):
    return User.objects.create_superuser(f"operator{next(_seq)}@example.org", "operator-pass-123")


@pytest.fixture
def make_partner(db, operator):
    """make_partner(kind=..., status=...) → (partner, admin user), registered and approved
    through the services."""

    def make(kind=Partner.Kind.MANUFACTURER, status=Partner.Status.ACTIVE, name=None):
        n = next(_seq)
        partner, admin = services.partner_register(
            name=name or f"Partner {n}",
            kind=kind,
            contact_email=f"contact{n}@example.org",
            admin_email=f"admin{n}@example.org",
            admin_password="a-long-password-123",
            admin_name=f"Admin {n}",
        )
        if status in (Partner.Status.ACTIVE, Partner.Status.SUSPENDED):
            partner = services.partner_approve(partner=partner, actor=operator)
        if status == Partner.Status.SUSPENDED:
            partner = services.partner_suspend(partner=partner, actor=operator)
        return partner, admin

    return make


@pytest.fixture
def add_staff(db):
    """add_staff(partner, role, admin) → user, invited and joined through the services."""

    def add(partner, role, admin):
        n = next(_seq)
        invitation = services.staff_invite(
            partner=partner, email=f"{role}{n}@example.org", role=role, invited_by=admin
        )
        return services.invitation_accept(
            invitation=invitation, password="a-long-password-123", full_name=f"{role} {n}"
        )

    return add


@pytest.fixture
def issue_key(db):
    """issue_key(partner, admin, scopes=None, **kw) → (credential, key)."""

    def issue(partner, admin, scopes=None, **kwargs):
        issued = services.credential_create(
            partner=partner,
            name=f"key {next(_seq)}",
            scopes=scopes if scopes is not None else list(Scope.values),
            created_by=admin,
            **kwargs,
        )
        return issued.credential, issued.key

    return issue


@pytest.fixture
def api():
    """api(key) → a DRF client that sends the key as a Bearer token."""

    def client(key=None):
        c = APIClient()
        if key:
            c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return c

    return client


ROLES = [Role.ADMIN, Role.ANALYST, Role.VIEWER]


# The manufacturer and retailer pair with an active agreement, for every test package.
from tests.records.conftest import pair  # noqa: E402, F401


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests reported (tests/support/summary.py)."""
    from tests.support import summary

    for title, lines in summary.SECTIONS:
        terminalreporter.write_sep("-", title)
        for line in lines:
            terminalreporter.write_line(line)
