"""Pseudonymous identity: normalisation, keyed digests, envelope encryption, rotation."""

import pytest
from cryptography.exceptions import InvalidTag
from django.core.exceptions import ValidationError
from django.db import connection

from consent import identity, keys, services
from consent.models import Customer, CustomerKey, CustomerSource, Identifier
from partners.models import Partner


@pytest.mark.parametrize(
    "kind,value,expected",
    [
        ("email", "  Alice.Smith@Example.COM ", "alice.smith@example.com"),
        ("phone", "+49 30 1234-5678", "+493012345678"),
        ("phone", "0049 30 12345678", "+493012345678"),
        ("phone", "(+44) 20 7946 0958", "+442079460958"),
        ("loyalty", " ab-1234 5678 ", "AB12345678"),
    ],
)
def test_identifiers_are_normalised(kind, value, expected):
    assert identity.normalise(kind, value) == expected


@pytest.mark.parametrize(
    "kind,value",
    [
        ("email", "not-an-address"),
        ("phone", "12345"),
        ("phone", "030 1234567"),
        ("loyalty", "x!"),
        ("fax", "123"),
    ],
)
def test_malformed_identifiers_are_refused(kind, value):
    with pytest.raises(ValidationError):
        identity.parse_identifier(kind=kind, value=value)


def test_national_phone_numbers_use_the_configured_region(settings):
    settings.PHONE_DEFAULT_REGION = "DE"
    assert identity.normalise("phone", "030 12345678") == "+493012345678"


def test_raw_and_prehashed_identifiers_resolve_to_one_subject(make_partner, make_customer):
    retailer, _ = make_partner(kind=Partner.Kind.RETAILER)
    maker, _ = make_partner()
    first = make_customer("Bob@Example.org", retailer)
    hashed = identity.parse_identifier(kind="email", sha256=identity.prehash("bob@example.org"))
    second = services.customer_resolve(identifier=hashed, partner=maker, categories=["warranty"])
    assert first == second
    assert set(CustomerSource.objects.filter(customer=first).values_list("partner", flat=True)) == {
        retailer.pk,
        maker.pk,
    }


def test_loyalty_numbers_are_per_programme(make_partner):
    a, _ = make_partner(kind=Partner.Kind.RETAILER)
    b, _ = make_partner(kind=Partner.Kind.RETAILER)
    in_a = services.customer_resolve(
        identifier=identity.parse_identifier(kind="loyalty", value="LOY123", programme_id=a.pk),
        partner=a,
    )
    in_b = services.customer_resolve(
        identifier=identity.parse_identifier(kind="loyalty", value="LOY123", programme_id=b.pk),
        partner=b,
    )
    assert in_a != in_b


def test_raw_values_exist_only_encrypted(make_partner, make_customer):
    partner, _ = make_partner()
    customer = make_customer("carol@example.org", partner)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT digest, ciphertext FROM consent_identifier WHERE customer_id = %s",
            [customer.pk],
        )
        digest, ciphertext = cursor.fetchone()
        cursor.execute(
            "SELECT wrapped FROM consent_customerkey WHERE customer_id = %s", [customer.pk]
        )
        (wrapped,) = cursor.fetchone()
    for blob in (digest, ciphertext, wrapped):
        assert b"carol" not in bytes(blob)
    assert services.identifiers_decrypt(customer)[0]["value"] == "carol@example.org"


def test_a_hashed_identifier_gains_its_ciphertext_when_sent_raw(make_partner):
    partner, _ = make_partner()
    hashed = identity.parse_identifier(kind="email", sha256=identity.prehash("dan@example.org"))
    customer = services.customer_resolve(identifier=hashed, partner=partner)
    assert services.identifiers_decrypt(customer)[0]["value"] is None
    services.customer_resolve(
        identifier=identity.parse_identifier(kind="email", value="dan@example.org"), partner=partner
    )
    assert services.identifiers_decrypt(customer)[0]["value"] == "dan@example.org"


def test_one_batch_resolves_duplicates_to_one_subject(make_partner):
    partner, _ = make_partner()
    parsed = [
        identity.parse_identifier(kind="email", value=v) for v in ["e@x.org", "E@X.org ", "f@x.org"]
    ]
    ids = services.customers_resolve(identifiers=parsed, partner=partner)
    assert ids[0] == ids[1] != ids[2]
    assert Customer.objects.count() == 2 and Identifier.objects.count() == 2


def test_master_key_rotation_keeps_everything_readable(make_partner, make_customer, settings):
    partner, _ = make_partner()
    customers = [make_customer(f"rot{i}@example.org", partner) for i in range(5)]
    old_version = CustomerKey.objects.values_list("master_version", flat=True).first()
    old_key = keys.master_keyring().get(old_version)
    import base64

    settings.MASTER_KEYS = f"new:{base64.b64encode(b'n' * 32).decode()},{old_version}:{base64.b64encode(old_key).decode()}"
    settings.MASTER_KEY_ID = "new"
    keys.reset_caches()
    try:
        ciphertexts_before = sorted(
            bytes(c) for c in Identifier.objects.values_list("ciphertext", flat=True)
        )
        assert services.master_key_rotate(batch_size=2) == 5
        assert set(CustomerKey.objects.values_list("master_version", flat=True)) == {"new"}
        ciphertexts_after = sorted(
            bytes(c) for c in Identifier.objects.values_list("ciphertext", flat=True)
        )
        assert ciphertexts_before == ciphertexts_after  # values were not re-encrypted
        # The old master key can now be retired: everything still decrypts without it.
        settings.MASTER_KEYS = f"new:{base64.b64encode(b'n' * 32).decode()}"
        keys.reset_caches()
        for i, customer in enumerate(customers):
            assert services.identifiers_decrypt(customer)[0]["value"] == f"rot{i}@example.org"
        assert services.master_key_rotate() == 0
    finally:
        keys.reset_caches()


def test_a_wrapped_key_is_bound_to_its_customer(make_partner, make_customer):
    partner, _ = make_partner()
    a = make_customer("a1@example.org", partner)
    b = make_customer("b1@example.org", partner)
    key_a = CustomerKey.objects.get(customer=a)
    with pytest.raises(InvalidTag):
        identity.unwrap_data_key(key_a.wrapped, b.pk, key_a.master_version)


def test_attaching_identifiers_links_them_but_never_merges_subjects(make_partner, make_customer):
    shop, _ = make_partner(kind=Partner.Kind.RETAILER)
    alice = make_customer("alice@example.org", shop)
    bob = make_customer("bob@example.org", shop)
    loyalty = identity.parse_identifier(kind="loyalty", value="BM-1001", programme_id=shop.pk)
    assert services.identifier_attach(customer=alice, identifier=loyalty, partner=shop)
    assert services.customer_resolve(identifier=loyalty, partner=shop) == alice
    bob_mail = identity.parse_identifier(kind="email", value="bob@example.org")
    assert not services.identifier_attach(customer=alice, identifier=bob_mail, partner=shop)
    assert services.customer_resolve(identifier=bob_mail, partner=shop) == bob
    assert {i["kind"] for i in services.identifiers_decrypt(alice)} == {"email", "loyalty"}


@pytest.mark.parametrize(
    "address",
    [
        "alice@example.org",
        "a.b+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "x@xn--bcher-kva.example",
        "jörg@example.de",
        "jo@bücher.example",
        '"quoted local"@example.org',
        "user@[192.168.0.1]",
        "user@localhost",
        "a..b@example.org",
        ".a@example.org",
        "a@-example.org",
        "a@example.-org",
        "a@example",
        "a@example.o",
        "a@@example.org",
        "a@exa_mple.org",
        "a b@example.org",
        "a@example.org\n",
    ],
)
def test_the_fast_email_check_accepts_only_what_djangos_validator_accepts(address):
    from django.core.validators import validate_email

    cleaned = address.strip().lower()  # what normalise hands to the checks
    try:
        validate_email(cleaned)
        valid = True
    except ValidationError:
        valid = False
    if identity.PLAIN_EMAIL.match(cleaned):
        assert valid
    try:
        identity.normalise("email", address)
        normalised = True
    except ValidationError:
        normalised = False
    assert normalised == valid
