import sys

from django.core.management.base import BaseCommand, CommandError

from clearinghouse.reconciliation.engine import reconcile_pair
from partners.models import Partner


class Command(BaseCommand):
    help = "Reconcile one manufacturer-retailer pair now (incremental, or --full), with progress."

    def add_arguments(self, parser):
        parser.add_argument("manufacturer", help="the manufacturer's slug")
        parser.add_argument("retailer", help="the retailer's slug")
        parser.add_argument(
            "--full", action="store_true", help="re-evaluate every record, not only new ones"
        )

    def handle(self, *args, manufacturer, retailer, full, **options):
        named = Partner.objects.unscoped("the operator's command names any pair")
        partners = {p.slug: p for p in named.filter(slug__in=[manufacturer, retailer])}
        if manufacturer not in partners or retailer not in partners:
            raise CommandError("Unknown partner slug: see the partners in Django admin.")
        m, r = partners[manufacturer], partners[retailer]
        if m.kind != Partner.Kind.MANUFACTURER or r.kind != Partner.Kind.RETAILER:
            raise CommandError("Name the manufacturer first, then the retailer.")

        def progress(step, done, total):
            bar = "#" * (30 * done // total)
            sys.stderr.write(f"\r[{bar:<30}] {done}/{total} {step:<28}")
            sys.stderr.flush()

        run = reconcile_pair(
            manufacturer=m, retailer=r, trigger="command", full=full, progress=progress
        )
        sys.stderr.write("\n")
        if run.status != "done":
            raise CommandError(
                f"Run {run.pk} {run.status}: another run of this pair is busy; try again."
            )
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
        self.stdout.write(
            self.style.SUCCESS(f"Run {run.pk} done in {run.duration_ms} ms: {counts}")
        )
