import sys

from django.core.management.base import BaseCommand, CommandError

from partners.models import Partner
from telemetry import services, simulate


class Command(BaseCommand):
    help = (
        "Register N simulated devices for a manufacturer and post D days of realistic readings "
        "through the ingest service (drifting drain pumps, filter hours, a silent device)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=int, default=20)
        parser.add_argument("--days", type=int, default=3)
        parser.add_argument(
            "--partner", default="nordwind-appliances", help="the manufacturer's slug"
        )
        parser.add_argument("--model", default="dishwasher")
        parser.add_argument("--prefix", default="SIM")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, devices, days, partner, model, prefix, seed, **options):
        if devices < 1 or days < 1:
            raise CommandError("--devices and --days must be at least 1")
        named = Partner.objects.unscoped("a command acts for the partner it is told to, by slug")
        maker = named.filter(slug=partner, kind="manufacturer").first()
        if maker is None:
            raise CommandError(f"no manufacturer with slug {partner!r}")
        serials = [f"{prefix}-{n:05d}" for n in range(1, devices + 1)]
        services.devices_register(
            partner=maker,
            rows=[{"serial": s, "gtin": "04012345000016", "model_name": model} for s in serials],
        )
        drifting = set(serials[:: max(1, devices // 3)][:3])
        silent = {serials[-1]} if devices > 1 else set()
        expected = devices * (days * 96 + 1) * 4  # about four readings per step
        done = [0]

        def progress(n):
            done[0] += n
            width = 40
            filled = min(width, width * done[0] // max(expected, 1))
            sys.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done[0]} readings")
            sys.stdout.flush()

        rows = simulate.readings(serials, days=days, seed=seed, drifting=drifting, silent=silent)
        totals = simulate.post(maker, rows, progress=progress)
        sys.stdout.write("\n")
        self.stdout.write(
            f"{devices} devices: {totals['accepted']} accepted, {totals['duplicates']} duplicates, "
            f"{totals['rejected']} rejected; drifting {', '.join(sorted(drifting))}; "
            f"silent {', '.join(silent) or '-'}"
        )
