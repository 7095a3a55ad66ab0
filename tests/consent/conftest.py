import pytest

from consent import identity, services


@pytest.fixture
def make_customer(db):
    """make_customer(email, partner) → a customer resolved from a raw e-mail by that partner."""

    def make(email, partner, categories=("purchase",)):
        parsed = identity.parse_identifier(kind="email", value=email)
        return services.customer_resolve(identifier=parsed, partner=partner, categories=categories)

    return make
