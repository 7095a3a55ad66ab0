"""Walking the portal and the dashboard: follow their links from start pages, a few pages per
route, and check every HTML answer."""

import re
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urlsplit

from django.urls import Resolver404, resolve

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
# Links the walk does not follow: downloads (not HTML) and signing out (ends the walk's session).
NOT_FOLLOWED = re.compile(r"\.csv$|/export/$|/receipts/|/signout/$|/logout/$")


class InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style elements and attributes,
    event-handler attributes and javascript: URLs; and POST forms without a CSRF token."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.post_form = None

    def handle_endtag(self, tag):
        if tag == "form" and self.post_form:
            self.found.append(f"<form action={self.post_form!r}> without a CSRF token")
            self.post_form = None

    def handle_starttag(self, tag, attrs):
        if tag == "form" and (dict(attrs).get("method") or "").lower() == "post":
            self.post_form = dict(attrs).get("action") or "(this page)"
        if tag == "input" and dict(attrs).get("name") == "csrfmiddlewaretoken":
            self.post_form = None
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "script" and not dict(attrs).get("src"):
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> element")

    handle_startendtag = handle_starttag


def inline_code(html):
    parser = InlineCode()
    parser.feed(html)
    return parser.found


class Walk:
    """Follows the links of the portal and the dashboard from some start pages, a few pages per
    route, checking each HTML answer."""

    def __init__(self, per_route=2):
        self.per_route = per_route
        self.templates = set()
        self.problems = []
        self.visited = []

    def check(self, url, response):
        self.visited.append(f"{url} {response.status_code}")
        self.templates |= {t.name for t in response.templates if t.name}
        if not response["Content-Type"].startswith("text/html"):
            return
        header = response.headers.get("Content-Security-Policy")
        if header != EXPECTED_CSP:
            self.problems.append(f"{url}: CSP {header!r}")
        for name, value in [
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
        ]:
            if response.headers.get(name) != value:
                self.problems.append(f"{url}: {name} {response.headers.get(name)!r}")
        if "camera=()" not in response.headers.get("Permissions-Policy", ""):
            self.problems.append(f"{url}: no Permissions-Policy")
        for found in inline_code(response.content.decode()):
            self.problems.append(f"{url}: {found}")

    def run(self, client, *starts):
        routes, seen = Counter(), set()
        queue = deque(starts)
        while queue:
            url = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            try:
                route = resolve(urlsplit(url).path).view_name
            except Resolver404:
                route = url
            routes[route] += 1
            if routes[route] > self.per_route:
                continue
            response = client.get(url)
            assert response.status_code < 500, url
            self.check(url, response)
            if response["Content-Type"].startswith("text/html"):
                for href in re.findall(r'href="([^"#]+)"', response.content.decode()):
                    href = href.replace("&amp;", "&")
                    if href.startswith(("/portal/", "/me/")) and not NOT_FOLLOWED.search(href):
                        queue.append(href)

    def post(self, client, url, data, **extra):
        response = client.post(url, data, follow=True, **extra)
        assert response.status_code < 500, url
        self.check(url, response)
        return response
