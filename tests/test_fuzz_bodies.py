"""Bodies beyond the schema, for every operation of the API that takes one.

``tests/test_fuzz_api.py`` sends what the schema describes, and its invalid twins; this sends what
no schema describes and hostile clients send anyway. Each example starts from a valid body drawn
from the schema (or an empty object) and breaks it one way:

- nesting: the body, or one value in it, wrapped in 17 to 100,000 levels of arrays or objects;
- a value replaced by a token no parser should choke on: numbers out of every range (``1e400``,
  ``10**30``, ``2**64``, ``NaN``), lone and paired UTF-16 surrogates, astral characters raw and
  escaped, NUL, strings of 5,000 to 200,000 characters (across the 4 KiB and 64 KiB reads),
  moments past the calendar's ends, a date that does not exist;
- bytes: invalid UTF-8 inside a string, a byte-order mark, a body cut short, trailing garbage,
  blank space that pushes a value across a read boundary;

and sends it with a Content-Length or chunked (through the WSGI application, as gunicorn hands
a chunked body over), as JSON and, where the operation streams, as NDJSON. Every answer must come
(a request that runs past ``REQUEST_GUARD`` seconds fails the test instead of hanging it), be no
5xx, and be an RFC 9457 problem when it is an error; a batch may answer 200 with the row
rejected instead.

``FUZZ_EXAMPLES`` (default 6) examples per operation; ``make fuzz`` runs it long.
"""

import contextlib
import io
import os
import signal
import traceback

import orjson
import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_fuzz_api import object_pools, world  # noqa: F401 (a fixture)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
PROBLEM = "application/problem+json"
# Far beyond any answer of the product (milliseconds); only a request that hangs reaches it.
REQUEST_GUARD = 120

TOKENS = [
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"1" + b"0" * 30,
    b"18446744073709551616",
    b"-9223372036854775809",
    b"9" * 5000,
    b"NaN",
    b"-Infinity",
    b'"\\udc00"',
    b'"\\ud83d"',
    b'"\\ud83d\\ude00"',
    '"😀 \u202e \u0301 \ufeff"'.encode(),
    b'"\\u0000"',
    b'"' + b"x" * 5000 + b'"',
    b'"' + "ж".encode() * 70_000 + b'"',
    b'"' + b"\\u0436" * 35_000 + b'"',
    b'"0001-01-01T00:00:00+01:00"',
    b'"9999-12-31T23:59:59-05:00"',
    b'"2026-02-30T10:00:00Z"',
    b'"2026-01-01T10:00:00"',
    b'"00000000-0000-0000-0000-000000000000"',
    b"[]",
    b"{}",
    b"null",
    b"true",
    b"-0",
]
LEVELS = [17, 100, 1000, 100_000]


def dump(value, target, raw):
    """``value`` as JSON bytes, with the value at path ``target`` (a tuple of keys and indexes)
    written as the raw bytes ``raw``."""
    if target == ():
        return raw
    if isinstance(value, dict):
        items = [
            orjson.dumps(str(k))
            + b":"
            + (dump(v, target[1:], raw) if k == target[0] else orjson.dumps(v))
            for k, v in value.items()
        ]
        return b"{" + b",".join(items) + b"}"
    if isinstance(value, list):
        items = [
            dump(v, target[1:], raw) if i == target[0] else orjson.dumps(v)
            for i, v in enumerate(value)
        ]
        return b"[" + b",".join(items) + b"]"
    return raw


def paths(value, here=()):
    """Every path in ``value``, the whole value first."""
    yield here
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*here, index))


def nested(levels, inner=b"1", kind="["):
    if kind == "[":
        return b"[" * levels + inner + b"]" * levels
    return b'{"a":' * levels + inner + b"}" * levels


@st.composite
def hostile(draw, base):
    """(raw body bytes, whether it is still a JSON value whose shape the base had): ``base``
    (a valid body) broken one way."""
    where = draw(st.sampled_from(list(paths(base))))
    how = draw(st.sampled_from(["nest", "token", "bytes"]))
    if how == "nest":
        inner = orjson.dumps(_at(base, where))
        wrapped = nested(draw(st.sampled_from(LEVELS)), inner, draw(st.sampled_from("[{")))
        return dump(base, where, wrapped), where != ()
    if how == "token":
        return dump(base, where, draw(st.sampled_from(TOKENS))), where != ()
    body = orjson.dumps(base)
    cut = draw(st.integers(min_value=0, max_value=max(0, len(body) - 1)))
    change = draw(st.sampled_from(["utf8", "bom", "truncate", "garbage", "pad"]))
    if change == "utf8":
        quote = body.find(b'"', cut)
        at = quote + 1 if quote >= 0 else cut
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xb0\x80", b"\x80"]))
        return body[:at] + bad + body[at:], False
    if change == "bom":
        return b"\xef\xbb\xbf" + body, False
    if change == "truncate":
        return body[:cut], False
    if change == "garbage":
        return body + draw(st.sampled_from([b"]", b"}", b",", b"x", b"\x00", b" [1]"])), False
    # Blank space that moves the cut across the 4 KiB and 64 KiB reads of the streamed paths.
    pad = draw(st.sampled_from([4096, 65536])) - cut % 4096 - 1
    if body[cut : cut + 1] in b",:[]{}":
        return body[:cut] + b" " * max(pad, 0) + body[cut:], True
    return body, True


def every_class(base):
    """One body of each kind of break, so that every class is sent to every operation whatever
    the random draws: each token at the deepest leaf, the deepest nesting both ways, each byte
    change. Each with whether it is still a JSON value of the base's shape."""
    leaf = max(paths(base), key=len)
    yield from ((dump(base, leaf, token), leaf != ()) for token in TOKENS)
    inner = orjson.dumps(_at(base, leaf))
    yield from ((dump(base, leaf, nested(LEVELS[-1], inner, kind)), leaf != ()) for kind in "[{")
    yield nested(LEVELS[-1]), isinstance(base, list)
    body = orjson.dumps(base)
    middle = body.find(b'"') + 1 if b'"' in body else len(body) // 2
    yield body[:middle] + b"\xed\xb0\x80" + body[middle:], False
    yield b"\xef\xbb\xbf" + body, False
    yield body[: len(body) // 2], False
    yield body + b" x", False
    yield b" " * 4095 + body, True


def _at(value, where):
    for key in where:
        value = value[key]
    return value


@pytest.fixture
def quiet_requests():
    """As tests/test_fuzz_api.py: requests in this thread and transaction; tracebacks kept."""
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


class Hung(Exception):
    pass


@contextlib.contextmanager
def guard(what):
    def alarm(signum, frame):
        raise Hung(f"{what}: no answer within {REQUEST_GUARD} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(REQUEST_GUARD)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def call(path, body, *, key, content_type, chunked):
    """The project's WSGI application, called as gunicorn calls it."""
    from clearinghouse.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": content_type,
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_HOST": "localhost",
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    chunks = application(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return answer["status"], answer["headers"].get("Content-Type", ""), content


def check(label, status, kind, content):
    assert status < 500, f"{label}: {status} {content[:300]!r}"
    if status >= 400:
        assert kind.startswith(PROBLEM), f"{label}: {status} as {kind}: {content[:200]!r}"
        problem = orjson.loads(content)
        assert problem["status"] == status and problem["detail"], problem


def test_every_body_operation_survives_bodies_beyond_its_schema(world, quiet_requests):  # noqa: F811
    from django.core.wsgi import get_wsgi_application

    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=config)
    pools = object_pools(world["maker"])
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().method.upper() in ("POST", "PUT", "PATCH", "DELETE")
    ]
    assert len(operations) >= 20, "the schema lost operations"
    failures, sent = [], 0
    for operation in operations:
        pool = pools.get(operation.path) or [{}]
        if "{" in operation.path and pool == [{}]:
            failures.append(f"{operation.label}: no real object for its path (object_pools)")
            continue
        params = dict(pool[0])
        for parameter in operation.definition.raw.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] not in params:
                params[parameter["name"]] = parameter["schema"]["enum"][0]
        path = operation.path.format(**params)
        streams = "application/x-ndjson" in str(operation.definition.raw.get("requestBody", {}))
        bases = _valid_bodies(operation)

        counts = {"sent": 0}
        run = _fuzzer(path, streams, bases, operation.label, world["key"], quiet_requests, counts)
        try:
            firsts = [bases[0], *[b for b in bases if isinstance(b, list)][:1]]
            for base in firsts:
                for n, (body, shaped) in enumerate(every_class(base)):
                    ndjson = streams and n % 3 == 2
                    _send(
                        operation.label,
                        path,
                        body,
                        world["key"],
                        quiet_requests,
                        counts,
                        content_type="application/x-ndjson" if ndjson else "application/json",
                        chunked=n % 2 == 1,
                        base=base,
                        batch=streams and (ndjson or (shaped and isinstance(base, list))),
                    )
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(
                f"{operation.label}: {exc}\n" + "\n".join(getattr(exc, "__notes__", []))
            )
        sent += counts["sent"]
    from tests.support import summary

    summary.report(
        "Body fuzzing (beyond the schema)",
        [f"{sent} hostile bodies over {len(operations)} operations (FUZZ_EXAMPLES={EXAMPLES})"],
    )
    assert not failures, "\n\n".join(failures)


def _fuzzer(path, streams, bases, label, key, errors, counts):
    """The hypothesis test of one operation: ``EXAMPLES`` hostile bodies."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(data=st.data())
    def run(data):
        base = data.draw(st.sampled_from(bases))
        body, shaped = data.draw(hostile(base))
        ndjson = streams and data.draw(st.booleans())
        _send(
            label,
            path,
            body,
            key,
            errors,
            counts,
            content_type="application/x-ndjson" if ndjson else "application/json",
            chunked=data.draw(st.booleans()),
            base=base,
            batch=streams and (ndjson or (shaped and isinstance(base, list))),
        )

    return run


def _send(label, path, body, key, errors, counts, *, content_type, chunked, base, batch):
    """Send one body (as an NDJSON line before a valid one, for that media type) and check the
    answer. ``batch``: a streamed ingest whose body is still a batch (NDJSON lines, or an array
    of elements one of which is broken) must answer 200, with the broken row rejected: a bad
    row never sinks its batch."""
    if content_type == "application/x-ndjson":
        body = body.replace(b"\n", b" ") + b"\n" + orjson.dumps(base)
    cache.clear()  # rate-limit counters: every example starts with none
    errors.clear()
    what = f"{label} ({content_type}, {'chunked' if chunked else 'sized'}, {len(body)} bytes)"
    with transaction.atomic(), guard(what):
        status, kind, content = call(
            path, body, key=key, content_type=content_type, chunked=chunked
        )
        transaction.set_rollback(True)
    counts["sent"] += 1
    try:
        check(what, status, kind, content)
        assert not batch or status == 200, f"{what}: a bad row sank its batch: {content[:300]!r}"
        if batch:  # every row is answered for: none silently dropped (a chunked body was)
            verdict = orjson.loads(content)
            rows = (
                len(verdict["results"])
                if "results" in verdict
                else sum(verdict[k] for k in ("accepted", "duplicates", "rejected"))
            )
            least = 2 if content_type == "application/x-ndjson" else min(1, len(base))
            assert rows >= least, f"{what}: {rows} rows answered for, not {least}: {verdict}"
    except AssertionError as exc:
        if errors:
            exc.add_note("Server traceback:\n" + "\n".join(errors))
        exc.add_note(f"Body (first 300 bytes): {body[:300]!r}")
        raise


def _valid_bodies(operation):
    """A few bodies the schema calls valid, as starting points (an empty object when the
    operation declares no body)."""
    if "requestBody" not in operation.definition.raw:
        return [{}]
    streams = "application/x-ndjson" in str(operation.definition.raw["requestBody"])
    found = []

    @settings(
        max_examples=5,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    def collect(case):
        if isinstance(case.body, dict | list):
            found.append(case.body)

    collect()
    if streams:  # a streamed ingest takes one object or an array of them: both paths
        found += [[body] for body in found if isinstance(body, dict)]
    return found or [{}]
