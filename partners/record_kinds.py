"""The shared vocabulary of interaction records: each kind's meaning, the purpose and data
category it implies, whether it is about a product unit, and the schema of its payload.

It lives in the lowest layer because sharing agreements (here, in partners/) name record kinds,
purposes and fields, and the core's records (above) validate against the same catalogue. The
purpose and category keys repeat those of consent/catalogue.py, which holds their policy texts; a
test keeps the two equal.

Payload validation is a small hand-written checker (not a DRF serializer per row): bulk ingest
validates tens of thousands of rows a second, and the same field specs also produce the JSON
Schema published in the OpenAPI document.
"""

import functools
import math
from dataclasses import dataclass, field
from datetime import date

STRING, INTEGER, NUMBER, BOOLEAN, DATE, STRING_LIST = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "string[]",
)


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    max_length: int = 500
    description: str = ""

    def check(self, value):
        """The cleaned value, or raise ValueError with a message for the caller."""
        t = self.type
        if t == STRING:
            if not isinstance(value, str):
                raise ValueError("must be a string")
            if len(value) > self.max_length:
                raise ValueError(f"must be at most {self.max_length} characters")
            if "\x00" in value:  # PostgreSQL cannot store it in text or jsonb
                raise ValueError("must not contain a NUL character")
            if self.choices and value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}")
            return value
        if t == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("must be an integer")
            if not -(2**63) <= value < 2**63:  # what PostgreSQL's bigint holds
                raise ValueError("is out of range: integers are 64-bit")
        elif t == NUMBER:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError("must be a finite number")
        elif t == BOOLEAN:
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        elif t == DATE:
            if not isinstance(value, str):
                raise ValueError("must be a date (YYYY-MM-DD)")
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError("must be a date (YYYY-MM-DD)") from None
            return value
        elif t == STRING_LIST:
            if not isinstance(value, list) or not all(
                isinstance(v, str) and len(v) <= 200 and "\x00" not in v for v in value
            ):
                raise ValueError("must be a list of strings")
            if len(value) > 50:
                raise ValueError("must have at most 50 items")
            return value
        if self.min is not None and value < self.min:
            raise ValueError(f"must be at least {self.min:g}")
        if self.max is not None and value > self.max:
            raise ValueError(f"must be at most {self.max:g}")
        return value

    def json_schema(self):
        base = {
            STRING: {"type": "string", "maxLength": self.max_length},
            INTEGER: {"type": "integer", "format": "int64"},
            NUMBER: {"type": "number"},
            BOOLEAN: {"type": "boolean"},
            DATE: {"type": "string", "format": "date"},
            STRING_LIST: {
                "type": "array",
                "items": {"type": "string", "maxLength": 200},
                "maxItems": 50,
            },
        }[self.type]
        if self.choices:
            base["enum"] = list(self.choices)
        if self.min is not None:
            base["minimum"] = self.min
        if self.max is not None:
            base["maximum"] = self.max
        if self.description:
            base["description"] = self.description
        return base


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    purpose: str  # the purpose this kind implies by default
    category: str  # the data category it belongs to
    unit: str  # "required", "optional" or "none": is it about a product unit (GTIN + serial)?
    fields: tuple = field(default_factory=tuple)
    description: str = ""

    @property
    def field_names(self):
        return tuple(f.name for f in self.fields)

    @functools.cached_property
    def specs(self):
        """{field name: Field}, looked up once per payload field during bulk validation."""
        return {f.name: f for f in self.fields}

    def validate(self, payload):
        """(clean payload, {field: message}) — unknown fields are errors too."""
        if not isinstance(payload, dict):
            return None, {"payload": "must be an object"}
        errors = {}
        clean = {}
        specs = self.specs
        for name in payload:
            if name not in specs:
                errors[f"payload.{name}"] = f"is not a field of {self.key}"
        for spec in self.fields:
            if spec.name not in payload or payload[spec.name] is None:
                if spec.required:
                    errors[f"payload.{spec.name}"] = "is required"
                continue
            try:
                clean[spec.name] = spec.check(payload[spec.name])
            except ValueError as exc:
                errors[f"payload.{spec.name}"] = str(exc)
        return (None, errors) if errors else (clean, {})

    def json_schema(self):
        schema = {
            "type": "object",
            "title": f"{self.key} payload",
            "description": self.description,
            "additionalProperties": False,
            "properties": {f.name: f.json_schema() for f in self.fields},
        }
        required = [f.name for f in self.fields if f.required]
        if required:  # OpenAPI 3.0 forbids an empty list
            schema["required"] = required
        return schema


PURPOSES = ("warranty", "service", "loyalty", "product_improvement", "marketing")
CATEGORIES = ("identity", "purchase", "warranty", "service", "loyalty", "telemetry", "location")

CURRENCY = Field(
    "currency", STRING, choices=("EUR", "GBP", "USD", "CHF", "SEK", "PLN"), description="ISO 4217"
)
STATUS = ("open", "in_progress", "closed", "cancelled")

KINDS = {
    k.key: k
    for k in [
        Kind(
            "sale",
            "Sale",
            "warranty",
            "purchase",
            "required",
            (
                Field(
                    "price_cents",
                    INTEGER,
                    required=True,
                    min=0,
                    max=10**9,
                    description="Price paid, in cents",
                ),
                CURRENCY,
                Field("channel", STRING, choices=("store", "online", "phone")),
                Field("store", STRING, max_length=100),
            ),
            "A product unit sold to a customer.",
        ),
        Kind(
            "return",
            "Return",
            "warranty",
            "purchase",
            "required",
            (
                Field("reason", STRING, max_length=200),
                Field("refund_cents", INTEGER, min=0, max=10**9),
                Field(
                    "sale_reference", STRING, max_length=100, description="The sale's external id"
                ),
            ),
            "A sold unit taken back.",
        ),
        Kind(
            "warranty_registration",
            "Warranty registration",
            "warranty",
            "warranty",
            "required",
            (
                Field("warranty_months", INTEGER, required=True, min=1, max=240),
                Field("purchase_date", DATE, description="The purchase date the customer gave"),
                Field("registered_via", STRING, choices=("app", "web", "mail", "store")),
            ),
            "A unit registered for warranty with its manufacturer.",
        ),
        Kind(
            "warranty_claim",
            "Warranty claim",
            "warranty",
            "warranty",
            "required",
            (
                Field("fault", STRING, required=True, max_length=200),
                Field("status", STRING, choices=("submitted", "approved", "rejected", "settled")),
                Field("description", STRING, max_length=2000),
            ),
            "A claim under warranty.",
        ),
        Kind(
            "service_request",
            "Service request",
            "service",
            "service",
            "required",
            (
                Field("issue", STRING, required=True, max_length=200),
                Field("status", STRING, choices=STATUS),
                Field(
                    "proactive", BOOLEAN, description="Raised from device data, not by the customer"
                ),
                Field(
                    "reference", STRING, max_length=100, description="Shared service case reference"
                ),
            ),
            "A request for service, by the customer or proactive.",
        ),
        Kind(
            "service_visit",
            "Service visit",
            "service",
            "service",
            "required",
            (
                Field("reference", STRING, max_length=100),
                Field(
                    "outcome", STRING, choices=("fixed", "parts_ordered", "not_fixed", "no_access")
                ),
                Field("technician", STRING, max_length=100),
            ),
            "A technician's visit.",
        ),
        Kind(
            "service_completion",
            "Service completion",
            "service",
            "service",
            "required",
            (
                Field("reference", STRING, max_length=100),
                Field("resolution", STRING, required=True, max_length=200),
                Field("parts_replaced", STRING_LIST),
            ),
            "A service case closed.",
        ),
        Kind(
            "loyalty_accrual",
            "Loyalty accrual",
            "loyalty",
            "loyalty",
            "optional",
            (
                Field("points", INTEGER, required=True, min=-(10**7), max=10**7),
                Field("programme", STRING, max_length=60),
                Field("sale_reference", STRING, max_length=100),
                Field("reason", STRING, choices=("purchase", "goodwill", "reversal", "promotion")),
            ),
            "Points credited (negative for a reversal).",
        ),
        Kind(
            "loyalty_redemption",
            "Loyalty redemption",
            "loyalty",
            "loyalty",
            "none",
            (
                Field("points", INTEGER, required=True, min=1, max=10**7),
                Field("programme", STRING, max_length=60),
            ),
            "Points spent.",
        ),
        Kind(
            "support_ticket",
            "Support ticket",
            "service",
            "service",
            "optional",
            (
                Field("topic", STRING, required=True, max_length=200),
                Field("channel", STRING, choices=("phone", "email", "chat", "store")),
                Field("status", STRING, choices=STATUS),
            ),
            "A support contact.",
        ),
        Kind(
            "feedback",
            "Feedback",
            "product_improvement",
            "service",
            "optional",
            (
                Field("rating", INTEGER, required=True, min=1, max=5),
                Field("comment", STRING, max_length=2000),
            ),
            "A rating of a product or a service.",
        ),
    ]
}

# What a clause may share beside the payload fields; ref, kind, recorded_by and occurred_at are
# always part of a shared record.
COMMON_FIELDS = ("product", "customer")


def shareable_fields(kind):
    return COMMON_FIELDS + KINDS[kind].field_names
