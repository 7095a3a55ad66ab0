"""The demo's customers: known to the retailer (e-mail, loyalty number) and to the manufacturer
(e-mail or phone, some only as a SHA-256), with consents given in the dashboard and at the till,
one withdrawn, one expiring, and one customer erased."""

from datetime import timedelta

from django.utils import timezone

from consent import identity, services
from consent.models import ConsentGrant, Customer

CUSTOMERS = [
    # (e-mail, phone, loyalty number, consents: [(grantee key, purpose, source)])
    (
        "alice@example.org",
        "+49 30 1234567",
        "BM-100001",
        [
            ("maker", "service", "customer"),
            ("maker", "warranty", "partner"),
            ("shop", "loyalty", "partner"),
            ("shop", "service", "customer"),
        ],
    ),
    (
        "bob@example.org",
        "+44 20 7946 0958",
        "BM-100002",
        [
            ("maker", "warranty", "partner"),
            ("shop", "loyalty", "partner"),
            ("maker", "loyalty", "partner"),
        ],
    ),
    (
        "chiara@example.org",
        None,
        "BM-100003",
        [("shop", "marketing", "customer"), ("maker", "warranty", "partner")],
    ),
    (
        "dmitri@example.org",
        "+33 1 23 45 67 89",
        None,
        [
            ("maker", "product_improvement", "customer"),
            ("maker", "warranty", "partner"),
            ("shop", "warranty", "customer"),
        ],
    ),
    (
        "emma@example.org",
        None,
        "BM-100005",
        [("maker", "service", "customer"), ("shop", "service", "customer")],
    ),
]
EVIDENCE = {
    "channel": "checkout",
    "text_shown": "May we share your purchase with the manufacturer "
    "for your warranty? You can withdraw this at any time.",
    "collected_at": "2026-10-01T09:30:00+00:00",
}


def load(partners, step):
    maker, shop = partners["maker"], partners["shop"]
    by_key = {"maker": maker, "shop": shop}
    customers = {}
    for email, phone, loyalty, consents in CUSTOMERS:
        customer = services.customer_resolve(
            identifier=identity.parse_identifier(kind="email", value=email),
            partner=shop,
            categories=["purchase", "loyalty"],
        )
        if loyalty:
            services.identifier_attach(
                customer=customer,
                partner=shop,
                identifier=identity.parse_identifier(
                    kind="loyalty", value=loyalty, programme_id=shop.pk
                ),
            )
        # The manufacturer knows the same people only by a hash of their address.
        services.customers_resolve(
            identifiers=[identity.parse_identifier(kind="email", sha256=identity.prehash(email))],
            partner=maker,
            categories=["warranty", "telemetry"],
        )
        if phone:
            services.identifier_attach(
                customer=customer,
                partner=maker,
                identifier=identity.parse_identifier(kind="phone", value=phone),
            )
        for grantee_key, purpose, source in consents:
            grantee = by_key[grantee_key]
            given = ConsentGrant.objects.for_partner(grantee)
            if given.filter(customer=customer, purpose=purpose, revoked_at__isnull=True).exists():
                continue
            services.consent_grant(
                customer=customer,
                grantee=grantee,
                purpose=purpose,
                source=source,
                collected_by=shop if source == "partner" else None,
                evidence=EVIDENCE if source == "partner" else None,
            )
        customers[email] = customer
    step(f"{len(customers)} customers with consents")
    bob = customers["bob@example.org"]
    if not bob.grants.filter(purpose="marketing").exists():
        grant = services.consent_grant(
            customer=bob, grantee=shop, purpose="marketing", source="customer"
        )
        services.consent_revoke(grant=grant)
        step("bob withdrew a marketing consent")
    chiara = customers["chiara@example.org"]
    if not chiara.grants.filter(purpose="loyalty").exists():
        services.consent_grant(
            customer=chiara,
            grantee=shop,
            purpose="loyalty",
            source="customer",
            expires_at=timezone.now() + timedelta(days=14),
        )
    if not Customer.objects.filter(erased_at__isnull=False).exists():
        gone = services.customer_resolve(
            identifier=identity.parse_identifier(kind="email", value="gone@example.org"),
            partner=shop,
        )
        services.consent_grant(customer=gone, grantee=shop, purpose="loyalty", source="customer")
        services.customer_erase(customer=gone)
        step("one customer erased")
    return customers
