from django.core.management.base import BaseCommand, CommandError

from consent.ledger import ledger_verify
from consent.models import LedgerEntry


class Command(BaseCommand):
    help = "Walk the consent ledger's hash chain; name every edited, removed or reordered entry."

    def handle(self, *args, **options):
        total = LedgerEntry.objects.count()
        self.stdout.write(f"Verifying {total} ledger entries…")

        def progress(done):
            self.stdout.write(f"\r  {done}/{total} ({100 * done // max(total, 1)}%)", ending="")
            self.stdout.flush()

        checked, problems = ledger_verify(progress=progress)
        self.stdout.write("")
        if problems:
            for problem in problems:
                self.stderr.write(f"  ✗ {problem}")
            raise CommandError(
                f"The ledger is NOT intact: {len(problems)} problem(s) in {checked} entries."
            )
        self.stdout.write(self.style.SUCCESS(f"The ledger is intact: {checked} entries verified."))
