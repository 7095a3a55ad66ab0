import base64
import os

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print fresh key material for the environment (keep it secret, keep it backed up)."

    def add_arguments(self, parser):
        parser.add_argument("--version", default="1", help="version label of the new keys")

    def handle(self, *args, version, **options):
        def key():
            return base64.b64encode(os.urandom(32)).decode()

        self.stdout.write(f"IDENTIFIER_HMAC_KEYS={version}:{key()}")
        self.stdout.write(f"IDENTIFIER_HMAC_KEY_ID={version}")
        self.stdout.write(f"MASTER_KEYS={version}:{key()}")
        self.stdout.write(f"MASTER_KEY_ID={version}")
        self.stdout.write(f"RECEIPT_SIGNING_KEYS={version}:{key()}")
        self.stdout.write(f"RECEIPT_SIGNING_KEY_ID={version}")
