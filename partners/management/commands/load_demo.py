"""Load the demo partners, staff and API keys (idempotent: run it as often as you like).

Each run issues fresh demo API keys (the old demo keys are revoked), because a key is shown only
once and stored only as a hash. The logins and keys are printed and written to .data/demo.txt.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from partners import services
from partners.models import ApiCredential, Partner, Role, Scope, User

PASSWORD = "clearinghouse-demo"
OPERATOR = "operator@clearinghouse.example"

PARTNERS = [
    {
        "name": "Nordwind Appliances",
        "kind": Partner.Kind.MANUFACTURER,
        "domain": "nordwind.example",
        "approve": True,
    },
    {
        "name": "Brightmart",
        "kind": Partner.Kind.RETAILER,
        "domain": "brightmart.example",
        "approve": True,
    },
    {
        "name": "Sparrow Electronics",
        "kind": Partner.Kind.RETAILER,
        "domain": "sparrow.example",
        "approve": False,
    },
]


class Command(BaseCommand):
    help = "Load the demo: partners of both kinds, staff of every role, API keys."

    def step(self, text):
        self.stdout.write(f"  · {text}")

    @transaction.atomic
    def handle(self, *args, **options):
        operator = User.objects.filter(email=OPERATOR).first()
        if operator is None:
            operator = User.objects.create_superuser(OPERATOR, PASSWORD, full_name="Olga Operator")
        self.step(f"operator {OPERATOR}")
        lines = [
            f"Demo logins (password for all: {PASSWORD})",
            f"    operator   {OPERATOR}  → /admin/",
        ]
        keys = []
        for spec in PARTNERS:
            partner, admin = self._partner(spec, operator)
            for role in (Role.ANALYST, Role.VIEWER):
                self._staff(partner, f"{role}@{spec['domain']}", role, admin)
            lines.append(
                f"    {spec['kind']:<12} {partner.name} ({partner.get_status_display().lower()}): "
                f"admin@{spec['domain']}, analyst@{spec['domain']}, viewer@{spec['domain']}"
            )
            if partner.is_active:
                for old in ApiCredential.objects.for_partner(partner).filter(
                    name="Demo key", revoked_at__isnull=True
                ):
                    services.credential_revoke(credential=old, actor=admin)
                issued = services.credential_create(
                    partner=partner, name="Demo key", scopes=list(Scope.values), created_by=admin
                )
                keys.append(f"    {partner.name}: {issued.key}")
        text = "\n".join([*lines, "Demo API keys (all scopes):", *keys]) + "\n"
        out = Path(settings.BASE_DIR) / ".data" / "demo.txt"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        self.stdout.write(text)

    def _partner(self, spec, operator):
        partner = Partner.objects.filter(name=spec["name"]).first()
        admin_email = f"admin@{spec['domain']}"
        if partner is None:
            partner, admin = services.partner_register(
                name=spec["name"],
                kind=spec["kind"],
                contact_email=f"contact@{spec['domain']}",
                admin_email=admin_email,
                admin_password=PASSWORD,
                admin_name=f"{spec['name'].split()[0]} Admin",
            )
            self.step(f"registered {partner.name}")
        admin = User.objects.get(email=admin_email)
        if spec["approve"] and not partner.is_active:
            partner = services.partner_approve(partner=partner, actor=operator)
            self.step(f"approved {partner.name}")
        return partner, admin

    def _staff(self, partner, email, role, admin):
        """Colleagues join the way real ones do: invited by the admin, then accepting."""
        if User.objects.filter(email=email).exists():
            return
        invitation = services.staff_invite(
            partner=partner, email=email, role=role, invited_by=admin
        )
        services.invitation_accept(
            invitation=invitation, password=PASSWORD, full_name=f"{role.title()} {partner.name}"
        )
