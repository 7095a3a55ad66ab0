"""OpenAPI: the problem document of every error, and the patterns of values that several
endpoints take, so that each says the same as the code that checks it."""


# --- Errors -----------------------------------------------------------------------------------

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem: every error of the API has this shape.",
    "properties": {
        "type": {
            "type": "string",
            "description": "urn:clearinghouse:problem:<code>, or about:blank",
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The path that was requested."},
        "errors": {
            "type": "array",
            "description": "One entry per invalid field (validation errors).",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "nullable": True, "description": "a dotted path"},
                    "message": {"type": "string"},
                    "code": {"type": "string", "nullable": True},
                },
                "required": ["field", "message"],
            },
        },
        "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)."},
    },
    "required": ["type", "title", "status", "detail"],
}
ERROR_DESCRIPTIONS = {
    400: "The request is not valid: see errors.",
    401: "No valid API key: missing, malformed, unknown, revoked or expired.",
    403: "The key lacks the scope this operation needs, or the partner is not active.",
    404: "Not found, or not yours: another partner's object is indistinguishable from a missing one.",
    406: "None of the media types in Accept can be served.",
    409: "Conflicts with the current state.",
    413: "The batch holds more rows than the limit.",
    415: "The body's media type is not accepted.",
    422: "This Idempotency-Key was used for a different request body.",
    429: "Rate limit reached: see retry_after and Retry-After.",
}


def _error_codes(operation):
    """The errors an operation can answer, from what it takes: every operation needs a key with
    a scope and is rate-limited; parameters and bodies can be invalid; a path names an object
    that may not be (yours); a cursor may be stale; a body has a media type; an Idempotency-Key
    may be reused."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    codes = {401, 403, 406, 429}
    if parameters or has_body:
        codes.add(400)
    if any(p["in"] == "path" or p["name"] == "cursor" for p in parameters):
        codes.add(404)
    if has_body:
        codes.add(415)
    if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters):
        codes.add(422)
    return codes


def _body_required(operation, components):
    """A body with required properties, or one of several shapes, cannot be left out: the
    document says so (drf-spectacular leaves ``required`` out for schemas given as dicts)."""
    body = operation.get("requestBody")
    if not body or body.get("required"):
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref:
            schema = components.get(ref.rsplit("/", 1)[-1], {})
        if schema.get("required") or schema.get("oneOf") or schema.get("type") == "array":
            body["required"] = True


def problem_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: document every error answer as
    ``application/problem+json`` with the ``Problem`` schema, so that the schema tells clients
    (and the fuzzing test that holds the API to it) what failures look like."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    components = result["components"]["schemas"]
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            _body_required(operation, components)
            responses = operation.setdefault("responses", {})
            declared = {int(code) for code in responses if code[0] in "45"}
            for code in sorted(_error_codes(operation) | declared):
                described = responses.get(str(code), {}).get("description")
                responses[str(code)] = {
                    "description": described or ERROR_DESCRIPTIONS.get(code, "An error."),
                    "content": {"application/problem+json": {"schema": reference}},
                }
    return result


# --- Values several endpoints take -------------------------------------------------------------

# GTIN-8, -12, -13 or -14: the digits (the check digit is checked too, which no pattern can say).
GTIN_PATTERN = "^[0-9]{8}([0-9]{4,6})?$"
GTIN_SCHEMA = {
    "type": "string",
    "pattern": GTIN_PATTERN,
    "description": "GTIN-8/12/13/14 with a valid check digit",
}
# A product unit's serial number, as records and devices take it.
SERIAL_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
SERIAL_SCHEMA = {"type": "string", "pattern": SERIAL_PATTERN, "maxLength": 64}
SHA256_PATTERN = "^[0-9a-f]{64}$"
