"""Run as ``python -m tests.faults.world`` in a process pointed at a private database: an approved
manufacturer and retailer (through the services), each with an API key, the manufacturer's
devices. Prints {"maker_key", "shop_key"} as JSON on stdout."""

import json
import sys

import django


def main(devices):
    django.setup()
    from partners import services
    from partners.models import Partner, Scope, User
    from telemetry.services import devices_register

    operator = User.objects.create_superuser("operator@faults.example", "faults-operator-123")
    keys = {}
    for slug, kind in (("maker", Partner.Kind.MANUFACTURER), ("shop", Partner.Kind.RETAILER)):
        partner, admin = services.partner_register(
            name=f"Faults {slug}",
            kind=kind,
            contact_email=f"contact@{slug}.example",
            admin_email=f"admin@{slug}.example",
            admin_password="faults-admin-pass-123",
        )
        partner = services.partner_approve(partner=partner, actor=operator)
        keys[f"{slug}_key"] = services.credential_create(
            partner=partner, name="faults", scopes=list(Scope.values), created_by=admin
        ).key
        if kind == Partner.Kind.MANUFACTURER and devices:
            devices_register(
                partner=partner,
                rows=[
                    {"serial": f"PG-{n}", "gtin": "04012345678901", "model_name": "DW-500"}
                    for n in range(devices)
                ],
            )
    print(json.dumps(keys))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
