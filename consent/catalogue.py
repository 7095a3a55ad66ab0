"""The fixed catalogue of purposes and data categories a customer can consent to.

Each purpose has a plain-language policy in numbered versions; a grant records the version the
customer saw. Adding a version never changes what an older grant meant. The catalogue is code, so
that it is reviewed like code and documented in one place (README, API schema, dashboard).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    description: str


@dataclass(frozen=True)
class Purpose:
    key: str
    label: str
    default_categories: tuple
    policies: dict  # version -> plain-language text

    @property
    def current_version(self):
        return max(self.policies)

    @property
    def current_policy(self):
        return self.policies[self.current_version]


CATEGORIES = {
    c.key: c
    for c in [
        Category("identity", "Identity", "That you are the same person at both companies."),
        Category("purchase", "Purchases", "What you bought, where and when, and returns."),
        Category("warranty", "Warranty", "Warranty registrations and claims."),
        Category("service", "Service", "Service requests, visits and repairs."),
        Category("loyalty", "Loyalty", "Loyalty points earned and redeemed."),
        Category("telemetry", "Device data", "Readings your connected appliance reports."),
        Category("location", "Location", "Where a product is installed or serviced."),
    ]
}

PURPOSES = {
    p.key: p
    for p in [
        Purpose(
            "warranty",
            "Warranty",
            ("identity", "purchase", "warranty"),
            {
                1: "The manufacturer and the retailer may share your purchase and warranty "
                "registration so that a warranty claim can be handled without you proving the "
                "purchase again.",
            },
        ),
        Purpose(
            "service",
            "Service and repairs",
            ("identity", "purchase", "warranty", "service", "telemetry"),
            {
                1: "The manufacturer and the retailer may share service requests, repairs and "
                "your appliance's device data so that a fault can be spotted early and a repair "
                "booked for you. Device data is used only to look after your appliance.",
            },
        ),
        Purpose(
            "loyalty",
            "Loyalty",
            ("identity", "purchase", "loyalty"),
            {
                1: "The retailer and the manufacturer may share purchases and loyalty points so "
                "that you are credited once, correctly, and goodwill credits reach you.",
            },
        ),
        Purpose(
            "product_improvement",
            "Product improvement",
            ("telemetry", "service"),
            {
                1: "The manufacturer may use device data and repair history, without your "
                "name or contact details, to make its products more reliable.",
            },
        ),
        Purpose(
            "marketing",
            "Offers",
            ("identity", "purchase"),
            {
                1: "The partner may use your purchases to send you offers. You can withdraw "
                "this at any time, and nothing else depends on it.",
            },
        ),
    ]
}


def validate_purpose(key):
    from django.core.exceptions import ValidationError

    if key not in PURPOSES:
        raise ValidationError(
            {"purpose": f"Unknown purpose {key!r}: use one of {', '.join(PURPOSES)}."}
        )
    return PURPOSES[key]


def validate_categories(keys):
    from django.core.exceptions import ValidationError

    if not keys:
        raise ValidationError({"categories": "Name at least one data category."})
    unknown = [k for k in keys if k not in CATEGORIES]
    if unknown:
        raise ValidationError(
            {
                "categories": f"Unknown categories {', '.join(map(repr, unknown))}: "
                f"use {', '.join(CATEGORIES)}."
            }
        )
    return sorted(set(keys))
