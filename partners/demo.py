"""The demo's partners: a manufacturer, a retailer and a retailer awaiting approval, with staff
of every role (invited and joined the way real colleagues are) and fresh API keys."""

from . import services
from .models import ApiCredential, Partner, Role, Scope, User

PASSWORD = "clearinghouse-demo"
OPERATOR = "operator@clearinghouse.example"

PARTNERS = [
    {
        "key": "maker",
        "name": "Nordwind Appliances",
        "kind": Partner.Kind.MANUFACTURER,
        "domain": "nordwind.example",
        "approve": True,
    },
    {
        "key": "shop",
        "name": "Brightmart",
        "kind": Partner.Kind.RETAILER,
        "domain": "brightmart.example",
        "approve": True,
    },
    {
        "key": "pending",
        "name": "Sparrow Electronics",
        "kind": Partner.Kind.RETAILER,
        "domain": "sparrow.example",
        "approve": False,
    },
]


def load(step):
    """Create what is missing; issue fresh demo keys (old ones are revoked). Returns
    ({key: partner}, lines for the printed summary)."""
    operator = User.objects.filter(email=OPERATOR).first()
    if operator is None:
        operator = User.objects.create_superuser(OPERATOR, PASSWORD, full_name="Olga Operator")
    step(f"operator {OPERATOR}")
    partners = {}
    lines = [
        f"Demo logins (password for all: {PASSWORD})",
        f"    operator     {OPERATOR}  → /admin/",
    ]
    keys = []
    for spec in PARTNERS:
        partner, admin = _partner(spec, operator, step)
        partners[spec["key"]] = partner
        for role in (Role.ANALYST, Role.VIEWER):
            _staff(partner, f"{role}@{spec['domain']}", role, admin)
        lines.append(
            f"    {spec['kind']:<12} {partner.name} ({partner.get_status_display().lower()}): "
            f"admin@{spec['domain']}, analyst@{spec['domain']}, viewer@{spec['domain']}"
        )
        if partner.is_active:
            for old in ApiCredential.objects.for_partner(partner).filter(
                name="Demo key", revoked_at__isnull=True
            ):
                services.credential_revoke(credential=old, actor=admin, reason="demo reloaded")
            issued = services.credential_create(
                partner=partner, name="Demo key", scopes=list(Scope.values), created_by=admin
            )
            keys.append(f"    {partner.name}: {issued.key}")
    return partners, [*lines, "Demo API keys (all scopes):", *keys]


def _partner(spec, operator, step):
    partner = Partner.objects.filter(name=spec["name"]).first()
    admin_email = f"admin@{spec['domain']}"
    if partner is None:
        partner, _ = services.partner_register(
            name=spec["name"],
            kind=spec["kind"],
            contact_email=f"contact@{spec['domain']}",
            admin_email=admin_email,
            admin_password=PASSWORD,
            admin_name=f"{spec['name'].split()[0]} Admin",
        )
        step(f"registered {partner.name}")
    admin = User.objects.get(email=admin_email)
    if spec["approve"] and not partner.is_active:
        partner = services.partner_approve(partner=partner, actor=operator)
        step(f"approved {partner.name}")
    return partner, admin


def _staff(partner, email, role, admin):
    """Colleagues join the way real ones do: invited by the admin, then accepting."""
    if User.objects.filter(email=email).exists():
        return
    invitation = services.staff_invite(partner=partner, email=email, role=role, invited_by=admin)
    services.invitation_accept(
        invitation=invitation, password=PASSWORD, full_name=f"{role.title()} {partner.name}"
    )
