from django.core.management.base import BaseCommand

from telemetry.partitions import partitions_maintain


class Command(BaseCommand):
    help = "Create reading partitions ahead (this month + N) and drop those past retention."

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=2)

    def handle(self, *args, ahead, **options):
        result = partitions_maintain(ahead=ahead)
        self.stdout.write(
            f"created {len(result['created'])}, dropped {len(result['dropped'])}, "
            f"deleted {result['deleted']} rows"
        )
