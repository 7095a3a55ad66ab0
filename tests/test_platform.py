"""The platform around the apps: health, production settings, error pages, architecture rules."""

import os
import sys
from pathlib import Path

import pytest

from tests.support.waiting import run

ROOT = Path(__file__).resolve().parent.parent


def test_healthz_reports_database_and_redis(db, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_is_503_when_redis_is_unreachable(db, client, settings):
    with socket_closed_port() as port:
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["redis"].startswith("unavailable")


class socket_closed_port:
    """A local port nobody listens on."""

    def __enter__(self):
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return self.port

    def __exit__(self, *exc):
        return False


PRODUCTION_KEYS = {
    "IDENTIFIER_HMAC_KEYS": "1:" + "A" * 43 + "=",
    "MASTER_KEYS": "1:" + "B" * 43 + "=",
    "RECEIPT_SIGNING_KEYS": "1:" + "C" * 43 + "=",
}


def production_env():
    """The environment of a complete production configuration."""
    return {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "clearinghouse.settings.production",
        "SECRET_KEY": "k7#Vq2!xPz9@Lm4$Rt6^Wb8&Nc1*Hd3(Jf5)Gs0-Ye2+Ua7=Io9",
        "ALLOWED_HOSTS": "clearinghouse.example",
        **PRODUCTION_KEYS,
    }


def test_production_settings_pass_check_deploy():
    env = production_env()
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        what="manage.py check --deploy",
        check=False,
        cwd=ROOT,
        env=env,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(PRODUCTION_KEYS, DJANGO_SETTINGS_MODULE="clearinghouse.settings.production")
    result = run(
        [sys.executable, "manage.py", "check"],
        what="manage.py check",
        check=False,
        cwd=ROOT,
        env=env,
        text=True,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_html_404_page_for_the_portal(db, client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and b"Page not found" in response.content


# --- architecture ---------------------------------------------------------------------------

# The layering itself is read from every import in tests/test_layers.py.


def _python_files(package):
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def test_views_and_serializers_reach_partner_data_only_through_for_partner():
    """Style rule 2: no `.objects` in views, serializers, forms or template tags except through
    for_partner(); an unscoped read must be named `unscoped(reason)` with its reason."""
    offenders = []
    for package in ["partners", "consent", "telemetry", "clearinghouse"]:
        for path in _python_files(package):
            if (
                path.name not in {"views.py", "serializers.py", "forms.py"}
                and "templatetags" not in path.parts
            ):
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if ".objects." in line and "for_partner(" not in line and "unscoped(" not in line:
                    if "normalize_email" in line or "User.objects.filter(email=" in line:
                        continue  # registration checks an address is free: no partner data
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, offenders


def test_partner_scoped_viewsets_cannot_override_get_queryset():
    from partners.api.base import PartnerScopedViewSet

    with pytest.raises(TypeError, match="scoped_queryset"):

        class Leaky(PartnerScopedViewSet):
            def get_queryset(self):
                return []


def test_for_partner_fails_closed(db):
    from partners.models import ApiCredential
    from partners.tenancy import TenancyError

    with pytest.raises(TenancyError):
        ApiCredential.objects.for_partner(None)


def test_production_refuses_to_start_without_key_material():
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_KEYS}
    env.update(
        DJANGO_SETTINGS_MODULE="clearinghouse.settings.production",
        SECRET_KEY="k7#Vq2!xPz9@Lm4$Rt6^Wb8&Nc1*Hd3(Jf5)Gs0-Ye2+Ua7=Io9",
    )
    result = run(
        [sys.executable, "manage.py", "check"],
        what="manage.py check",
        check=False,
        cwd=ROOT,
        env=env,
        text=True,
    )
    assert result.returncode != 0 and "generate_keys" in result.stderr


def test_record_vocabulary_matches_the_consent_catalogue():
    from consent.catalogue import CATEGORIES, PURPOSES
    from partners import record_kinds

    assert set(record_kinds.PURPOSES) == set(PURPOSES)
    assert set(record_kinds.CATEGORIES) == set(CATEGORIES)
    for kind in record_kinds.KINDS.values():
        assert kind.purpose in PURPOSES and kind.category in CATEGORIES
