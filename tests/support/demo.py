"""The demo world (the demo's own loaders, with fewer units and devices) for tests that walk the
product the way a visitor of the demo would."""

from types import SimpleNamespace

from clearinghouse.demo import consent as consent_demo
from clearinghouse.demo import partners as partners_demo
from clearinghouse.demo import records as records_demo
from clearinghouse.demo import telemetry as telemetry_demo
from clearinghouse.reconciliation.engine import reconcile_pair
from partners.models import User


def _quiet(text):
    pass


def load_small_demo():
    partners, _ = partners_demo.load(_quiet)
    partners_demo.load_agreements(partners, _quiet)
    customers = consent_demo.load(partners, _quiet)
    records_demo.load(partners, customers, _quiet, bulk_units=6)
    telemetry_demo.load(partners, _quiet, devices=3, days=2)
    reconcile_pair(manufacturer=partners["maker"], retailer=partners["shop"], trigger="demo")

    def user(email):
        return User.objects.get(email=email)

    return SimpleNamespace(
        partners=partners,
        customers=customers,
        user=user,
        admin=user("admin@nordwind.example"),
        password=partners_demo.PASSWORD,
    )
