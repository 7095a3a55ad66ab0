"""The demo's partners: a manufacturer, a retailer and a retailer awaiting approval, with staff
of every role (invited and joined the way real colleagues are) and fresh API keys."""

from partners import agreements, services
from partners.models import ApiCredential, Membership, Partner, Role, Scope, SharingAgreement, User

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
    partner = (
        Partner.objects.unscoped("the demo loader finds the demo partners it made before")
        .filter(name=spec["name"])
        .first()
    )
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


# --- sharing agreements -------------------------------------------------------------------------

M2R, R2M = "manufacturer_to_retailer", "retailer_to_manufacturer"
AGREEMENT_V1 = [
    {"kind": "sale", "purpose": "warranty", "direction": R2M, "fields": ["product", "customer", "channel"]},
    {"kind": "return", "purpose": "warranty", "direction": R2M, "fields": ["product", "customer", "reason"]},
    {"kind": "warranty_registration", "purpose": "warranty", "direction": M2R, "fields": ["product", "customer", "warranty_months", "purchase_date"]},
    {"kind": "warranty_claim", "purpose": "warranty", "direction": M2R, "fields": ["product", "customer", "fault", "status"]},
    {"kind": "service_request", "purpose": "service", "direction": M2R, "fields": ["product", "customer", "issue", "status", "proactive", "reference"]},
    {"kind": "service_request", "purpose": "service", "direction": R2M, "fields": ["product", "customer", "issue", "status", "reference"]},
    {"kind": "service_visit", "purpose": "service", "direction": M2R, "fields": ["product", "customer", "reference", "outcome"]},
    {"kind": "service_completion", "purpose": "service", "direction": M2R, "fields": ["product", "customer", "reference", "resolution", "parts_replaced"]},
    {"kind": "loyalty_accrual", "purpose": "loyalty", "direction": M2R, "fields": ["customer", "points", "programme", "reason"]},
    {"kind": "loyalty_accrual", "purpose": "loyalty", "direction": R2M, "fields": ["product", "customer", "points", "programme", "reason", "sale_reference"]},
    {"kind": "return", "purpose": "loyalty", "direction": R2M, "fields": ["product", "customer", "sale_reference"]},
]  # fmt: skip


def _agreement_v2():
    """Brightmart's pending change: it adds the store to sales, shares product feedback, and
    no longer carries Nordwind's loyalty points."""
    clauses = [
        dict(c, fields=list(c["fields"]))
        for c in AGREEMENT_V1
        if not (c["kind"] == "loyalty_accrual" and c["direction"] == M2R)
    ]
    for clause in clauses:
        if clause["kind"] == "sale":
            clause["fields"].append("store")
    clauses.append(
        {
            "kind": "feedback",
            "purpose": "product_improvement",
            "direction": R2M,
            "fields": ["product", "rating", "comment"],
        }
    )
    return clauses


def _admin_of(partner):
    return (
        Membership.objects.for_partner(partner)
        .filter(role=Role.ADMIN)
        .select_related("user")
        .order_by("created_at")
        .first()
        .user
    )


def load_agreements(partners, step):
    """Nordwind and Brightmart: version 1 proposed by the manufacturer and countersigned by the
    retailer (in force), and version 2 proposed by the retailer, awaiting countersignature — so
    the portal shows a diff and a decision to take. Idempotent: an existing agreement between
    them is left as it is."""
    maker, shop = partners["maker"], partners["shop"]
    if not (maker.is_active and shop.is_active):
        return
    if SharingAgreement.objects.for_partner(maker).filter(retailer=shop).exists():
        step(f"sharing agreement {maker.name} ↔ {shop.name} already there")
        return
    maker_admin, shop_admin = _admin_of(maker), _admin_of(shop)
    v1 = agreements.agreement_propose(
        proposer=maker,
        counterpart=shop,
        clauses=AGREEMENT_V1,
        actor=maker_admin,
        note="Warranty and service data both ways, so that care reaches the customer.",
    )
    agreements.agreement_countersign(version=v1, partner=shop, actor=shop_admin)
    agreements.agreement_propose(
        proposer=shop,
        counterpart=maker,
        clauses=_agreement_v2(),
        actor=shop_admin,
        note="Add the store to sales and share product feedback; we stop carrying your points.",
    )
    step(f"sharing agreement {maker.name} ↔ {shop.name}: version 1 in force, version 2 proposed")
