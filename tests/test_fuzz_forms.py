"""Every form of the portal and the dashboard, posted with boundary and hostile values.

The pages are found from the URL configuration, not listed: every route outside the API and the
operator's admin. Each is opened by the actor it is for (the manufacturer's and the retailer's
admins, a customer, or nobody for sign-in and registration), with the objects of the tenancy
matrix (tests/test_tenancy_matrix.py) in its URL. Every ``<form method="post">`` on it is read
(its inputs, selects and textareas) and posted ``FUZZ_EXAMPLES`` times (default 3) with values
drawn from boundaries (empty; at, just under and past the field's ``maxlength``; the lengths of
the columns behind the forms: 100, 150, 200, 254, 255, 320), hostile text (NUL, markup, control
characters, right-to-left marks, astral characters, invalid UTF-8, 5,000 nested brackets for a
JSON field), numbers out of range, dates that do not exist or leave the calendar, choices that
are not offered, and CSV files that break every rule — plus one pass that sends each text field
past its length alone. A route that shows no form is posted the common field names anyway.

Every answer must be no 5xx (a form error, a redirect, a 4xx are all fine); work the post
hands to a worker runs too, and must not fail. Each post is rolled back, so the world stays the
same for the next.
"""

import contextlib
import os
import re
import signal
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import Resolver404, resolve, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import summary
from tests.test_tenancy_matrix import (
    CUSTOMER,
    PORTAL,
    REGISTRY,
    build_world,
    customer_client,
    object_kwargs,
    staff_client,
    walk,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
GUARD = 120  # seconds; far beyond any page (milliseconds): only a hang reaches it
SKIPPED_NAMESPACES = {"api", "admin"}
SKIPPED = {
    "schema": "the OpenAPI document (GET only)",
    "api-docs": "the API's documentation page (GET only)",
    "healthz": "the health check (GET only)",
    "receipt-keys": "public keys (GET only)",
    "home": "the landing page (no form)",
    "logout": "signs the session out (no fields)",
    "password_reset_confirm": "Django's own form; the token is the secret",
    "password_reset_done": "a message",
    "password_reset_complete": "a message",
    "password_change": "Django's own form",
    "password_change_done": "a message",
}
LENGTHS = [0, 1, 64, 65, 100, 101, 150, 151, 200, 201, 254, 255, 320, 321, 500, 2001, 5001]
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    '"><script>alert(1)</script>',
    "\r\n\t",
    "\u202eevil",
    "e\u0301",
    "😀" * 300,
    "\ufeff",
    "-1",
    "0",
    "99999999999999999999999999999",
    "1e400",
    "NaN",
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-05:00",
    "[" * 5000 + "]" * 5000,
    '[{"kind": "threshold", "metric": "power_w", "op": ">", "value": 1e400, "minutes": 5}]',
    '{"a": "\\udc00"}',
    "x" * 100_000,
]
PLAUSIBLE = {
    "checkbox": "on",
    "password": "a-Fuzzing-password-123",
    "email": "fuzz@example.org",
    "url": "https://hooks.example/in",
    "number": "1",
    "date": "2026-06-01",
    "tel": "+4915112345678",
    "text": "Fuzz value",
    "search": "fuzz",
}
# One post per value with every text field of the form set to it: each class reaches each field.
EVERYWHERE = [
    "\x00",
    '"><script>alert(1)</script>',
    "x" * 100_000,
    "😀" * 300,
    "[" * 5000 + "]" * 5000,
    '[{"kind": "threshold", "metric": "power_w", "op": ">", "value": 1e400, "minutes": 5}]',
    "99999999999999999999999999999",
    "0001-01-01T00:00:00+01:00",
    "2026-02-30",
    "\r\n\t",
]
COMMON_FIELDS = ["reason", "text", "note", "confirm", "version", "role", "action", "email"]


class Forms(HTMLParser):
    """The POST forms of a page: action, and fields as (name, kind, value, options, maxlength)."""

    def __init__(self):
        super().__init__()
        self.forms, self.form, self.select, self.textarea = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self.form = {
                "action": a.get("action") or "",
                "fields": [],
                "multipart": "multipart" in (a.get("enctype") or ""),
            }
            self.forms.append(self.form)
        if tag == "option" and self.select is not None:
            self.select[3].append(a.get("value", ""))
            if self.select[2] is None or "selected" in a:  # the selected option, or the first
                self.select[2] = a.get("value", "")
            return
        if self.form is None or not a.get("name"):
            return
        maxlength = int(a["maxlength"]) if (a.get("maxlength") or "").isdigit() else None
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind == "radio":
                group = next((f for f in self.form["fields"] if f[0] == a["name"]), None)
                if group is None:
                    group = [a["name"], "select", a.get("value", ""), [], None]
                    self.form["fields"].append(group)
                group[3].append(a.get("value", ""))
                if "checked" in a:
                    group[2] = a.get("value", "")
            elif kind not in ("submit", "button", "reset", "image"):
                # An empty field gets a plausible value (a checkbox is ticked): more of the
                # form is valid that way, so that one hostile field reaches deeper.
                value = a.get("value") or PLAUSIBLE.get(kind, "")
                self.form["fields"].append([a["name"], kind, value, [], maxlength])
        elif tag == "select":
            self.select = [a["name"], "select", None, [], None]
            self.form["fields"].append(self.select)
        elif tag == "textarea":
            self.textarea = [a["name"], "textarea", "", [], maxlength]
            self.form["fields"].append(self.textarea)

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[2] += data

    def close(self):
        super().close()
        for form in self.forms:
            for field in form["fields"]:
                if field[1] == "textarea" and not field[2].strip():
                    field[2] = PLAUSIBLE["text"]

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def forms_of(html):
    parser = Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


CSV_HEADER = "external_id,kind,occurred_at,customer_kind,customer_value,gtin,serial,price_cents"
CSV_FILES = [
    b"",
    b"\xef\xbb\xbf"
    + CSV_HEADER.encode()
    + b"\nS-1,sale,2026-10-01T10:00:00Z,email,a@b.example,04012345678901,SN-1,100\n",
    (
        CSV_HEADER
        + "\nS-1,sale,0001-01-01T00:00:00+01:00,email,a@b.example,04012345678901,SN-1,1e400\n"
    ).encode(),
    (
        CSV_HEADER
        + "\nS-\x00,sale,9999-12-31T23:59:59-05:00,email,\udcff,1,x,99999999999999999999\n"
    ).encode(errors="surrogateescape"),
    CSV_HEADER.encode() + b"\n" + b"x" * 200_000 + b"\n",
    b"\xff\xfe\x00\x01 not text",
    b'"unterminated,quote\n' * 50,
    CSV_HEADER.encode() + b"\n" + b",".join([b"a"] * 5000) + b"\n",
]


def email_of_length(n):
    """A valid address of ``n`` characters (at least 12): a local part of up to 64, then
    domain labels of up to 63."""
    local = "a" * max(1, min(64, n - 12))
    rest = n - len(local) - 1 - len(".example")
    labels = []
    while rest > 0:
        size = min(63, rest)
        if rest - size == 1:  # a label needs a character after its dot
            size -= 1
        labels.append("b" * size)
        rest -= size + 1
    return f"{local}@{'.'.join(labels or ['b'])}.example"


def url_of_length(n):
    return "https://hooks.example/" + "p" * max(0, n - 22)


@st.composite
def value_for(draw, field):
    _, kind, original, options, maxlength = field
    if kind == "file":
        return ("file", draw(st.sampled_from(CSV_FILES)))
    if kind == "checkbox":
        return draw(st.sampled_from([original or "on", None, "\x00", "x" * 500]))
    if kind == "hidden":
        return draw(
            st.sampled_from([original, original, "", "-1", "99999999999", "x" * 300, "\x00"])
        )
    if kind == "select":
        return draw(st.sampled_from([*(options[:3] or [""]), "not-offered", "", "\x00", "x" * 300]))
    lengths = LENGTHS + ([maxlength - 1, maxlength, maxlength + 1] if maxlength else [])
    choice = draw(st.sampled_from(["keep", "length", "hostile", "hostile"]))
    if choice == "keep":
        return original
    if choice == "length":
        # Valid values of every length for typed fields: only a valid value reaches the column.
        n = max(draw(st.sampled_from(lengths)), 0)
        if kind == "email" or "email" in field[0]:
            return email_of_length(max(n, 12))
        if kind == "url" or "url" in field[0]:
            return url_of_length(n)
        return draw(st.sampled_from(["x", "ж", "😀", "1"])) * n
    return draw(st.sampled_from(HOSTILE_TEXT))


def encode(form, values):
    data = {}
    for (name, *_), value in zip(form["fields"], values, strict=True):
        if value is None:
            continue
        if isinstance(value, tuple):
            data[name] = SimpleUploadedFile("fuzz.csv", value[1], content_type="text/csv")
        else:
            data.setdefault(name, []).append(value)
    return data


@contextlib.contextmanager
def guard(what):
    def alarm(signum, frame):
        raise TimeoutError(f"{what}: no answer within {GUARD} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(GUARD)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def post(client, url, data, capture):
    """Post in a savepoint that is rolled back, running the work it hands to workers first."""
    with transaction.atomic(), guard(f"POST {url}"):
        with capture(execute=True):
            response = client.post(url, data)  # multipart: files and fields alike
        transaction.set_rollback(True)
    return response


def pages(world):
    """(route name, url, [(actor label, client)]) of every page route."""
    from partners import selectors as partner_selectors
    from partners import services as partner_services
    from partners.models import Role

    shop_admin = world.shop_admin
    actors = {
        PORTAL: [
            ("maker admin", lambda: staff_client(world.admin)),
            ("shop admin", lambda: staff_client(shop_admin)),
        ],
        CUSTOMER: [("customer", lambda: customer_client(world.alice))],
        "anonymous": [("nobody", Client)],
    }
    found, unknown = [], []
    for _, name, entry in walk():
        namespace = name.split(":")[0] if ":" in name else ""
        if namespace in SKIPPED_NAMESPACES or name in SKIPPED or not name:
            continue
        kwargs = object_kwargs(entry)
        if name in REGISTRY:
            audience, factory = REGISTRY[name]
            target = factory(world)
            url = reverse(name, kwargs=target.kwargs)
            found.append((name, url, actors[audience][:1]))
        elif name == "portal:invitation-accept":
            invitation = partner_services.staff_invite(
                partner=world.maker,
                email="fuzz-invitee@nordwind.example",
                role=Role.VIEWER,
                invited_by=world.admin,
            )
            token = partner_selectors.invitation_token(invitation)
            found.append((name, reverse(name, kwargs={"token": token}), actors["anonymous"]))
        elif name == "dashboard:link":
            continue  # signing in by link is a GET of a one-time token; the POST is empty
        elif kwargs:
            unknown.append(name)
        elif namespace == "dashboard":
            found.append((name, reverse(name), actors[CUSTOMER] + actors["anonymous"]))
        elif namespace in ("portal", "records", "reconciliation", "telemetry", "notices"):
            found.append((name, reverse(name), actors[PORTAL]))
        else:
            found.append((name, reverse(name), actors["anonymous"] + actors[PORTAL][:1]))
    assert not unknown, f"page routes with an object in the URL the fuzzer cannot fill: {unknown}"
    return found


def test_every_form_survives_boundary_and_hostile_values(
    operator, make_partner, issue_key, django_capture_on_commit_callbacks
):
    world = build_world(operator, make_partner, issue_key)
    from partners.models import Membership, Role

    world.shop_admin = (
        Membership.objects.for_partner(world.shop).filter(role=Role.ADMIN).first().user
    )
    failures, posted, forms_seen, routes = [], 0, set(), 0
    for _, url, actor_list in pages(world):
        routes += 1
        for label, make_client in actor_list:
            client = make_client()
            with guard(f"GET {url}"):
                page = client.get(url)
            if page.status_code >= 500:
                failures.append(f"GET {url} as {label}: {page.status_code}")
                continue
            html = (
                page.content.decode(errors="replace")
                if "html" in page.get("Content-Type", "")
                else ""
            )
            found = forms_of(html) or [
                {
                    "action": "",
                    "multipart": False,
                    "fields": [[f, "text", "", [], None] for f in COMMON_FIELDS],
                }
            ]
            for form in found:
                target = urljoin(url, form["action"]) if form["action"] else url
                target = urlsplit(target).path
                try:
                    resolved = resolve(target)
                except Resolver404:
                    continue
                if (resolved.namespace or "") in SKIPPED_NAMESPACES or resolved.url_name in (
                    "logout",
                ):
                    continue
                shape = (target, tuple(f[0] for f in form["fields"]))
                if shape in forms_seen:
                    continue
                forms_seen.add(shape)
                passes = _examples(form) + _too_long_alone(form) + _hostile_everywhere(form)
                for values in passes:
                    data = encode(form, values)
                    try:
                        response = post(client, target, data, django_capture_on_commit_callbacks)
                    except Exception as exc:  # a view's or a task's error: the failure to report
                        failures.append(
                            f"POST {target} as {label}: {type(exc).__name__}: {exc}"[:500]
                        )
                        break
                    posted += 1
                    if response.status_code >= 500:
                        failures.append(
                            f"POST {target} as {label}: {response.status_code} for {_short(data)}"
                        )
                        break
    summary.report(
        "Form fuzzing (portal and dashboard)",
        [
            f"{posted} posts to {len(forms_seen)} forms on {routes} page routes (FUZZ_EXAMPLES={EXAMPLES})"
        ],
    )
    assert routes > 40 and len(forms_seen) > 25, (routes, len(forms_seen))
    assert not failures, "\n".join(failures)


def _examples(form):
    drawn = []
    strategy = st.tuples(*[value_for(f) for f in form["fields"]]) if form["fields"] else st.just(())

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(values=strategy)
    def collect(values):
        drawn.append(values)

    collect()
    return drawn[:EXAMPLES]


TEXT_KINDS = ("text", "email", "url", "search", "textarea", "password", "tel", "number", "date")


def _hostile_everywhere(form):
    """For each value of ``EVERYWHERE``, every text field set to it, the rest as shown."""
    originals = [f[2] if f[1] != "file" else None for f in form["fields"]]
    texts = [i for i, f in enumerate(form["fields"]) if f[1] in TEXT_KINDS]
    if not texts:
        return []
    return [
        [value if i in texts else original for i, original in enumerate(originals)]
        for value in EVERYWHERE
    ]


def _too_long_alone(form):
    """Each text field past its length (its maxlength + 1, or 100,000), the others as shown; and
    each e-mail and URL field with a valid value of 255 and 320 characters (the form may take
    what the column cannot hold)."""
    passes = []
    originals = [f[2] if f[1] != "file" else None for f in form["fields"]]
    for i, (name, kind, _, _, maxlength) in enumerate(form["fields"]):
        if kind not in TEXT_KINDS:
            continue
        values = list(originals)
        values[i] = "x" * ((maxlength or 99_999) + 1)
        passes.append(values)
        for n in (255, 320):
            if kind == "email" or "email" in name:
                passes.append([*originals[:i], email_of_length(n), *originals[i + 1 :]])
            elif kind == "url" or "url" in name:
                passes.append([*originals[:i], url_of_length(n), *originals[i + 1 :]])
    return passes


def _short(data):
    return re.sub(r"\s+", " ", repr({k: (str(v)[:40]) for k, v in data.items()}))[:300]
