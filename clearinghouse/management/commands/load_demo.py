"""Load the demo (idempotent: run it as often as you like).

The demo (``clearinghouse.demo``) loads layer by layer: partners, then customers and consents,
then records and telemetry. Each run issues fresh demo API keys, because a key is shown only once
and stored only as a hash; the logins and keys are printed and written to .data/demo.txt.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from clearinghouse.demo import consent as consent_demo
from clearinghouse.demo import partners as partners_demo
from clearinghouse.demo import records as records_demo
from clearinghouse.demo import telemetry as telemetry_demo
from clearinghouse.reconciliation.engine import reconcile_pair


class Command(BaseCommand):
    help = (
        "Load the demo: partners, staff, API keys, an agreement, customers with consents, records."
    )

    def step(self, text):
        self.stdout.write(f"  · {text}")
        self.stdout.flush()

    def handle(self, *args, **options):
        with transaction.atomic():
            partners, lines = partners_demo.load(self.step)
            partners_demo.load_agreements(partners, self.step)
            customers = consent_demo.load(partners, self.step)
            records_demo.load(partners, customers, self.step)
            telemetry_demo.load(partners, self.step)
        run = reconcile_pair(
            manufacturer=partners["maker"], retailer=partners["shop"], trigger="demo"
        )
        self.step(
            f"reconciled: {run.counts.get('opened', 0)} discrepancies opened, {run.counts.get('links_created', 0)} links"
        )
        lines += [
            "Customer dashboard: /me/ — sign in as alice@example.org (or bob@, chiara@, dmitri@, emma@example.org).",
            "    The sign-in link is e-mailed to .data/mail/ (newest file), or print one now with:",
            "    .venv/bin/python manage.py demo_sign_in_link alice@example.org",
        ]
        text = "\n".join(lines) + "\n"
        out = Path(settings.BASE_DIR) / ".data" / "demo.txt"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        self.stdout.write(text)
