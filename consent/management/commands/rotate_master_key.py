from django.core.management.base import BaseCommand

from consent.keys import master_keyring
from consent.models import CustomerKey
from consent.services import master_key_rotate


class Command(BaseCommand):
    help = (
        "Re-wrap every customer data key under the current master key (MASTER_KEY_ID). "
        "Encrypted identifiers are not touched. Interruptible; run again to finish."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size, **options):
        current = master_keyring().current
        todo = CustomerKey.objects.exclude(master_version=current).count()
        self.stdout.write(f"{todo} data keys to re-wrap under master key {current!r}")

        def progress(done):
            self.stdout.write(f"\r  {done}/{todo} ({100 * done // max(todo, 1)}%)", ending="")
            self.stdout.flush()

        done = master_key_rotate(batch_size=batch_size, progress=progress)
        self.stdout.write("")
        left = (
            CustomerKey.objects.exclude(master_version=current)
            .values_list("master_version", flat=True)
            .distinct()
        )
        self.stdout.write(self.style.SUCCESS(f"Re-wrapped {done} data keys."))
        if not left:
            self.stdout.write(
                "No data key uses an older master key: older versions may be retired from MASTER_KEYS."
            )
