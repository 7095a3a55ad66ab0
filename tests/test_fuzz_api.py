"""Property-based fuzzing of every API operation against the OpenAPI document the product serves.

Schemathesis reads /api/schema/ from the running WSGI application and generates requests for
every operation, valid ones (positive) and invalid ones (negative). Each is sent in-process, with
a real all-scope API key of an approved manufacturer that holds an agreement, records, consents,
devices, rules, signals, discrepancies, webhooks and notices, against the real PostgreSQL and
Redis. Every answer must:

- not be a 5xx;
- have a status code, a content type, headers and a body that the schema documents;
- reject invalid input with a 4xx (an invalid row inside a batch ingest: as a rejected row of
  its 200 answer; an operation whose inputs all accept any value gets no invalid examples);
- be ``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail`` when it is
  an error.

Path parameters are drawn half the time from the partner's real objects, so that the happy
paths (200/201/202/204) are reached, not only 404s. Each request runs in a savepoint that is
rolled back, so examples do not leak into each other and a revoked key or a deleted endpoint
comes back for the next one.

``FUZZ_EXAMPLES`` sets the number of examples per operation and generation mode (small by
default, so ``make test`` stays fast); ``make fuzz`` runs it long and prints the count per
operation.
"""

import os
import traceback

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import summary

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
# A fixed seed in the suite (the same examples every run); `make fuzz` draws fresh ones.
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
PROBLEM = "application/problem+json"
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE

# Operations not fuzzed, each with the reason. None today: the streamed ingests (records,
# readings) are described by the schema and fuzzed like the rest.
EXCLUDED = {}


@schemathesis.check
def errors_are_problem_json(ctx, response, case):
    """Every 4xx/5xx of the API is an RFC 9457 problem document."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert content_type == PROBLEM, (
        f"{response.status_code} answered as {content_type or 'no content type'}, "
        f"not {PROBLEM}: {response.text[:300]!r}"
    )
    body = response.json()
    assert isinstance(body, dict), f"the problem is not an object: {body!r}"
    missing = {"type", "title", "status", "detail"} - set(body)
    assert not missing, f"the problem lacks {sorted(missing)}: {body!r}"
    assert body["status"] == response.status_code, body
    return True


# Batch ingests answer 200 with a verdict per row: valid rows are stored, invalid ones reported
# (a records batch is an array; readings are always a batch, one object being a batch of one).
BATCH_INGESTS = {"POST /api/v1/records", "POST /api/v1/telemetry/readings"}


@schemathesis.check
def invalid_input_rejected(ctx, response, case):
    """Invalid input gets a 4xx (schemathesis' negative_data_rejection) — except an invalid row
    inside a batch array, which must come back as a rejected row of a 200 answer."""
    meta = case.meta
    in_body = meta is not None and meta.phase.data.parameter_location == ParameterLocation.BODY
    batch = case.operation.label in BATCH_INGESTS and in_body
    if batch and response.status_code == 200 and "rejected" in response.json():
        verdict = response.json()
        assert verdict["rejected"] >= 1, f"an invalid row was accepted: {verdict}"
        return True
    return negative_data_rejection(ctx, response, case)


# What no OpenAPI 3.0 schema can say, each with why. A positive example (valid by the schema) may
# be refused (400, or a rejected row of a batch) only for one of these: any other refusal is a
# rule the schema leaves out, and the document must say it.
NOT_IN_ANY_SCHEMA = {
    "wrong check digit": "a GTIN's check digit is arithmetic",
    "is not a cursor this API gave out": "a cursor is opaque: only the API writes one",
    "in the future": "relative to the moment of the request",
    "older than your telemetry retention": "relative to now and the partner's retention",
    "out of range: from 1900 to 9000": "date-time formats have no bounds in OpenAPI 3.0",
    "NUL character": "every string is valid Unicode without NUL (the API's description)",
    "lone UTF-16 surrogate": "as above",
    "key that is not valid text": "as above",
    "value or its sha256, not both": "a choice between two query parameters",
    "name the customer": "a choice between query parameters",
    "phone number": "whether a number is possible in its region (libphonenumber)",
    "loyalty number is 4 to 40": "spaces and dashes are left out before counting",
    "valid email address": "the address syntax beyond format: email",
    "e-mail address is too long": "254 characters once normalised, for an e-mail value only",
    "No endpoint of yours has this id": "a reference to an object of yours",
    "No active partner has this slug": "a reference to another partner",
    "appears twice in this request": "unique by a key of the items",
    "has no policy version": "a version of the purpose's policy (GET /consents/catalogue)",
}


def _refusals(response):
    """The messages of a refusal of valid input: a 400's errors, or the rejected rows of a
    batch's 200."""
    if response.status_code not in (400, 422) and response.status_code != 200:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    if response.status_code in (400, 422):
        return [e["message"] for e in body.get("errors", [])] or [body.get("detail", "")]
    if isinstance(body, dict) and body.get("rejected"):
        rows = body.get("results") or body.get("errors") or []
        return [
            error["message"]
            for row in rows
            for error in (row.get("errors") or ([row] if "message" in row else []))
        ]
    return []


@schemathesis.check
def valid_input_accepted(ctx, response, case):
    """Valid input (by the schema) is taken: the schema states every rule the server enforces,
    but for those in ``NOT_IN_ANY_SCHEMA``."""
    unexplained = [
        m for m in _refusals(response) if not any(rule in m for rule in NOT_IN_ANY_SCHEMA)
    ]
    assert not unexplained, (
        f"{response.status_code}: valid input refused for a rule the schema does not state: "
        f"{unexplained}"
    )
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    errors_are_problem_json,
]


@pytest.fixture
def in_process_requests():
    """Requests go through Django's WSGI handler on this thread, inside the test's transaction:
    like Django's test client, keep the handler from closing the connection after each one, and
    keep the traceback of any unhandled exception for the failure report."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    errors = []

    def keep(sender, request=None, **kwargs):
        errors.append(traceback.format_exc())

    signals.got_request_exception.connect(keep)
    try:
        yield errors
    finally:
        signals.got_request_exception.disconnect(keep)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, operator):
    """The demo's partners, agreement, customers, consents, records, devices, rules and signals
    (kept small), reconciled into discrepancies, plus a webhook endpoint with a delivery and a
    withdrawn consent's notice; and a fresh all-scope key of the manufacturer."""
    from partners import services as partner_services
    from partners import webhooks
    from partners.models import Scope
    from tests.support.demo import load_small_demo
    from tests.support.notices import notice_for

    demo = load_small_demo()
    partners = demo.partners
    maker = partners["maker"]
    admin = demo.admin
    issued = webhooks.endpoint_create(
        partner=maker,
        url="https://hooks.nordwind.example/clearinghouse",
        event_types=["discrepancy.opened", "consent.revoked"],
        actor=admin,
    )
    webhooks.webhook_ping(endpoint=issued.endpoint, actor=admin)
    notice_for(maker)
    key = partner_services.credential_create(
        partner=maker, name="fuzz", scopes=list(Scope.values), created_by=admin
    ).key
    return {"partners": partners, "maker": maker, "key": key, "admin": admin}


def object_pools(maker):
    """Real path parameters of the manufacturer's own objects, by operation path."""
    from clearinghouse.reconciliation import selectors as recon_selectors
    from clearinghouse.reconciliation.models import WarrantyTerms
    from clearinghouse.records import visibility
    from consent import notices
    from consent.models import ConsentGrant
    from partners import webhooks
    from partners.agreements import agreement_list
    from partners.models import ApiCredential
    from telemetry import selectors as telemetry_selectors

    records = visibility.visible_records(partner=maker).read(channel="test", limit=20)
    ids = lambda rows, name="id", attr="pk": [{name: str(getattr(r, attr))} for r in rows]  # noqa: E731
    pools = {
        "/api/v1/agreements/{id}": ids(agreement_list(partner=maker)),
        "/api/v1/consents/{id}": ids(ConsentGrant.objects.for_partner(maker)[:10]),
        "/api/v1/credentials/{id}": ids(ApiCredential.objects.for_partner(maker)),
        "/api/v1/discrepancies/{id}": ids(
            recon_selectors.discrepancies_visible(partner=maker)[:10]
        ),
        "/api/v1/notices/{id}": ids(notices.partner_notices(partner=maker, acknowledged=None)),
        "/api/v1/records/{ref}": [{"ref": r["ref"]} for r in records],
        "/api/v1/telemetry/devices/{serial}": ids(
            telemetry_selectors.device_list(partner=maker), "serial", "serial"
        ),
        "/api/v1/telemetry/rules/{id}/{action}": ids(telemetry_selectors.rule_list(partner=maker)),
        "/api/v1/telemetry/signals/{id}": ids(telemetry_selectors.signal_list(partner=maker)),
        "/api/v1/units/{gtin}/{serial}/timeline": [
            {"gtin": r["product"]["gtin"], "serial": r["product"]["serial"]}
            for r in records
            if r.get("product")  # a counterpart's row has it only when a clause shares it
        ],
        "/api/v1/webhook-deliveries/{id}": ids(webhooks.delivery_list(partner=maker)),
        "/api/v1/webhooks/{id}": ids(webhooks.endpoint_list(partner=maker)),
        "/api/v1/warranty-terms/{id}": ids(WarrantyTerms.objects.for_partner(maker)),
    }
    for path in list(pools):
        for suffix in ("/revoke", "/comments", "/dismiss", "/reopen", "/resolve", "/acknowledge"):
            pools.setdefault(path + suffix, pools[path])
    pools["/api/v1/telemetry/signals/{id}/{action}"] = pools["/api/v1/telemetry/signals/{id}"]
    pools["/api/v1/webhook-deliveries/{id}/redeliver"] = pools["/api/v1/webhook-deliveries/{id}"]
    pools["/api/v1/webhooks/{id}/ping"] = pools["/api/v1/webhooks/{id}"]
    pools["/api/v1/webhooks/{id}/rotate-secret"] = pools["/api/v1/webhooks/{id}"]
    return pools


def can_be_invalid(operation):
    """Whether any input of the operation has a schema that some value violates (a bare string
    path parameter takes any value: there is nothing to send wrong)."""
    definition = operation.definition.raw
    if "requestBody" in definition:
        return True
    return any(
        parameter.get("in") != "path"
        or parameter.get("schema", {}).keys() - {"type"}
        or parameter.get("schema", {}).get("type") != "string"
        for parameter in definition.get("parameters", [])
    )


def strategy_for(operation, mode, pool):
    generated = operation.as_strategy(generation_mode=mode)
    if not pool or mode != POSITIVE:
        return generated
    real = st.sampled_from(pool).flatmap(
        lambda params: operation.as_strategy(generation_mode=mode, path_parameters=params)
    )
    return st.one_of(generated, real)


def fuzz(operation, mode, pool, headers, request_errors, counts):
    """Run up to ``EXAMPLES`` examples of one operation in one generation mode, counting them
    in ``counts``. Raises the (shrunk) failure, if any."""
    checks = CHECKS + ([invalid_input_rejected] if mode == NEGATIVE else [valid_input_accepted])
    key = (operation.label, mode.value)
    counts[key] = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy_for(operation, mode, pool))
    def run(case):
        counts[key] += 1
        cache.clear()  # rate-limit counters: every example starts with none
        request_errors.clear()
        with transaction.atomic():
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except Exception as exc:
            if request_errors:
                exc.add_note("Server traceback:\n" + "\n".join(request_errors))
            raise

    run()


def report_counts(counts, failures):
    total = sum(counts.values())
    lines = [
        f"{total} examples over {len({label for label, _ in counts})} operations "
        f"(positive + negative; FUZZ_EXAMPLES={EXAMPLES} per operation and mode)"
    ]
    if os.environ.get("FUZZ_TABLE"):
        by_label = {}
        for (label, mode), count in counts.items():
            by_label.setdefault(label, {})[mode] = count
        for label, modes in by_label.items():
            failed = " FAILED" if any((label, m) in failures for m in modes) else ""
            lines.append(
                f"  {modes.get('positive', 0):>6} + {modes.get('negative', 0):>6}  {label}{failed}"
            )
    summary.report("API fuzzing (schemathesis)", lines)


def test_the_served_schema_is_valid_openapi(db, client):
    from drf_spectacular.validation import validate_schema

    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    validate_schema(response.json())  # raises on an invalid document (e.g. an empty required)


def test_every_operation_survives_fuzzing(world, in_process_requests):
    app = get_wsgi_application()
    # The key is sent by us on every request, never generated (nor mutated) by the fuzzer.
    # 413 is how an ingest refuses an array over its maxItems: a rejection like any 4xx.
    refused = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
    config = schemathesis.Config.from_dict(
        {
            "generation": {"with-security-parameters": False},
            "checks": {"negative_data_rejection": {"expected-statuses": refused}},
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/schema/", app, config=config)
    pools = object_pools(world["maker"])
    headers = {"Authorization": f"Bearer {world['key']}"}
    failures = {}
    counts = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40, "the schema lost operations"
    for operation in operations:
        if operation.label in EXCLUDED:
            continue
        for mode in (POSITIVE, NEGATIVE):
            key = (operation.label, mode.value)
            if mode == NEGATIVE and not can_be_invalid(operation):
                continue
            try:
                fuzz(
                    operation, mode, pools.get(operation.path), headers, in_process_requests, counts
                )
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
                failures[key] = f"{type(exc).__name__}: {exc}\n" + "\n".join(
                    getattr(exc, "__notes__", [])
                )
    report_counts(counts, failures)
    if failures:
        report = "\n\n".join(
            f"{label} [{mode}]\n{text}" for (label, mode), text in failures.items()
        )
        pytest.fail(f"{len(failures)} operation/mode pairs failed:\n\n{report}", pytrace=False)


def test_every_get_renders_for_a_browser(world, client):
    """``Accept: text/html`` (a staff member's browser, or a key holder's) on every GET of the
    schema, with real objects in the path: the browsable API renders, or answers an error as
    problem+json; never a 500 (the records list raised IndexError: a streamed endpoint
    declared no parsers for the raw-data form)."""
    from django.test import Client

    schema = client.get("/api/schema/?format=json").json()
    pools = object_pools(world["maker"])
    browser = Client()
    browser.force_login(world["admin"])
    keyed = Client(HTTP_AUTHORIZATION=f"Bearer {world['key']}")
    problems, seen = [], 0
    for path, item in schema["paths"].items():
        if "get" not in item:
            continue
        if "{" in path:
            if not pools.get(path):
                problems.append(f"{path}: no real object to put in the path (object_pools)")
                continue
            url = path.format(**pools[path][0])
        else:
            url = path
        for label, actor in (("staff session", browser), ("API key", keyed)):
            cache.clear()
            response = actor.get(url, HTTP_ACCEPT="text/html")
            seen += 1
            kind = response.get("Content-Type", "")
            if response.status_code >= 500:
                problems.append(f"GET {url} as {label}: {response.status_code}")
            elif response.status_code < 300 and not kind.startswith("text/html"):
                problems.append(f"GET {url} as {label}: 200 as {kind}")
            elif response.status_code >= 400 and not kind.startswith(PROBLEM):
                problems.append(f"GET {url} as {label}: {response.status_code} as {kind}")
    assert seen > 40
    assert not problems, "\n".join(problems)
