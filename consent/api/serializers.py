from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from clearinghouse.common.api.fields import MomentField, StrictCharField, StrictSlugField
from clearinghouse.common.api.schema import SHA256_PATTERN

from .. import identity
from ..catalogue import CATEGORIES, PURPOSES


def _identifier_by_value(kind, value_schema):
    return {
        "type": "object",
        "properties": {"kind": {"type": "string", "enum": [kind]}, "value": value_schema},
        "required": ["kind", "value"],
        "additionalProperties": False,
    }


# What a customer reference looks like, as the OpenAPI document says it: the value raw (an
# e-mail address, a phone number, a loyalty number of your programme) or the SHA-256 hex of its
# normalised form, never both. What no schema can say, ``identity.normalise`` checks: that an
# address is deliverable in form, a phone number possible.
IDENTIFIER_SCHEMA = {
    "description": "The customer: e-mail, phone or your loyalty number, raw (`value`) or as the "
    "SHA-256 hex of the normalised value (`sha256`: lower-cased e-mail, E.164 phone, upper-case "
    "loyalty number without spaces or dashes).",
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": list(identity.KINDS)},
                "sha256": {"type": "string", "pattern": SHA256_PATTERN},
            },
            "required": ["kind", "sha256"],
            "additionalProperties": False,
        },
        _identifier_by_value(
            identity.EMAIL, {"type": "string", "format": "email", "maxLength": 254}
        ),
        _identifier_by_value(
            identity.PHONE,
            {
                "type": "string",
                "pattern": "^[+0-9][0-9 ().\\-/]{3,30}$",
                "description": "E.164 (+4930123456), or national with PHONE_DEFAULT_REGION",
            },
        ),
        _identifier_by_value(
            identity.LOYALTY,
            {
                "type": "string",
                "pattern": "^[A-Za-z0-9 -]{4,60}$",
                "description": "4 to 40 letters or digits once spaces and dashes are left out",
            },
        ),
    ],
}


# The same, as query parameters (GET /consents/status, /customers/timeline): ``value`` or
# ``sha256``, never both (no schema of parameters can say that; the view answers 400).
IDENTIFIER_PARAMETERS = [
    OpenApiParameter("kind", str, enum=list(identity.KINDS)),
    OpenApiParameter(
        "value",
        {"type": "string", "maxLength": 320},
        description="The identifier raw (or send sha256)",
    ),
    OpenApiParameter(
        "sha256",
        {"type": "string", "pattern": SHA256_PATTERN},
        description="SHA-256 hex of the normalised identifier",
    ),
]


@extend_schema_field(IDENTIFIER_SCHEMA)
class IdentifierSerializer(serializers.Serializer):
    """A customer named by e-mail, phone (E.164, or national with PHONE_DEFAULT_REGION) or
    loyalty number (of the calling partner's programme): the value, or the SHA-256 hex of its
    normalised form."""

    kind = serializers.ChoiceField(choices=identity.KINDS)
    value = StrictCharField(required=False, max_length=320, trim_whitespace=False)
    sha256 = StrictCharField(required=False, max_length=64)

    def validate(self, data):
        programme = self.context.get("programme")
        try:
            return identity.parse_identifier(
                kind=data["kind"],
                value=data.get("value"),
                sha256=data.get("sha256"),
                programme_id=programme.pk if programme else None,
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class EvidenceSerializer(serializers.Serializer):
    channel = StrictCharField(max_length=60, help_text="e.g. 'checkout', 'app', 'call-centre'")
    text_shown = StrictCharField(max_length=5000)
    collected_at = MomentField(past=True)


class ConsentCreateSerializer(serializers.Serializer):
    identifier = IdentifierSerializer()
    purpose = serializers.ChoiceField(choices=list(PURPOSES))
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=list(CATEGORIES)),
        required=False,
        allow_empty=False,
        min_length=1,  # so that the schema says minItems: 1
        max_length=len(CATEGORIES),
    )
    policy_version = serializers.IntegerField(required=False, min_value=1)
    grantee = StrictSlugField(
        required=False,
        help_text="The partner the customer consented to (its slug); the caller when omitted. "
        "A retailer may record, at its till, a consent given to a manufacturer.",
    )
    evidence = EvidenceSerializer()
    expires_at = MomentField(required=False, allow_null=True)


class ReceiptDocumentSerializer(serializers.Serializer):
    receipt = serializers.DictField(help_text="The signed payload (canonical JSON is signed).")
    signature = StrictCharField(help_text="Ed25519 signature, base64url")
    kid = StrictCharField(help_text="Key id in /.well-known/clearinghouse-receipt-keys.json")
    alg = StrictCharField()


class ConsentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    customer = serializers.UUIDField(source="customer_id", help_text="Pseudonymous reference.")
    grantee = StrictCharField(source="grantee.slug")
    purpose = StrictCharField()
    categories = serializers.ListField(child=StrictCharField())
    policy_version = serializers.IntegerField()
    source = StrictCharField()
    granted_at = MomentField()
    expires_at = MomentField(allow_null=True)
    revoked_at = MomentField(allow_null=True)
    receipt = serializers.SerializerMethodField()

    @extend_schema_field(ReceiptDocumentSerializer(allow_null=True))
    def get_receipt(self, grant):
        receipt = getattr(grant, "receipt", None)
        if receipt is None:
            return None
        return {
            "receipt": receipt.payload,
            "signature": receipt.signature,
            "kid": receipt.key_id,
            "alg": "EdDSA",
        }


class ConsentStatusQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=identity.KINDS)
    value = StrictCharField(required=False, max_length=320, trim_whitespace=False)
    sha256 = StrictCharField(required=False, max_length=64)


class PurposeStatusSerializer(serializers.Serializer):
    purpose = StrictCharField()
    granted = serializers.BooleanField()
    categories = serializers.ListField(child=StrictCharField())
    policy_version = serializers.IntegerField(allow_null=True)
    granted_at = MomentField(allow_null=True)
    expires_at = MomentField(allow_null=True)
    consent_id = serializers.UUIDField(allow_null=True)


class ConsentStatusSerializer(serializers.Serializer):
    customer = serializers.UUIDField(allow_null=True, help_text="Pseudonymous reference, if known.")
    purposes = PurposeStatusSerializer(many=True)


class CatalogueSerializer(serializers.Serializer):
    purposes = serializers.ListField(child=serializers.DictField())
    categories = serializers.ListField(child=serializers.DictField())
