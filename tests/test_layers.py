"""The house's layering, read from the source: imports run from the top down, never up, and no
two packages import each other.

Bottom to top (``README.md``, "How it is built"):

0. ``clearinghouse.common`` — plumbing every layer uses (problems, pagination, parameters,
   bounded bodies, strict fields, schema pieces, streamed ingest and idempotency, SQL helpers);
   it knows no domain.
1. ``partners`` — organisations, staff, keys, agreements, webhooks.
2. ``consent`` — customers, identity, consent, the access log, notices.
3. The core: ``clearinghouse.records`` (records and THE visibility decision), above it
   ``clearinghouse.reconciliation`` (findings and their decision), above both
   ``clearinghouse.timelines`` (what a partner reads of a unit or a customer, with links).
4. ``telemetry`` — devices, readings, rules, signals, care.
5. The project: settings, URLs, the Celery app, middleware, serving, the demo.

Every import counts, at module level or inside a function: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("clearinghouse", "partners", "consent", "telemetry")
CORE = ("records", "reconciliation", "timelines", "common")
LAYERS = {
    "clearinghouse.common": (0, 0),
    "partners": (1, 0),
    "consent": (2, 0),
    "clearinghouse.records": (3, 0),
    "clearinghouse.reconciliation": (3, 1),
    "clearinghouse.timelines": (3, 2),
    "telemetry": (4, 0),
    "clearinghouse": (5, 0),  # the project: settings, urls, celery, middleware, demo
}


def package_of(module):
    parts = module.split(".")
    if parts[0] == "clearinghouse" and len(parts) > 1 and parts[1] in CORE:
        return ".".join(parts[:2])
    return parts[0]


def modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            yield ".".join(parts), is_package, path


def imports(module, is_package, path):
    """The project modules ``module`` imports, anywhere in it."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            if name and name.split(".")[0] in APPS:
                yield name


def edges():
    found = {}
    for module, is_package, path in modules():
        for name in imports(module, is_package, path):
            a, b = package_of(module), package_of(name)
            if a != b:
                found.setdefault((a, b), []).append(f"{module} imports {name}")
    return found


def test_every_package_has_a_layer():
    packages = {package_of(module) for module, _, _ in modules()}
    assert packages <= set(LAYERS), packages - set(LAYERS)


def test_imports_run_from_the_top_down():
    upward = [
        line for (a, b), lines in sorted(edges().items()) if LAYERS[a] < LAYERS[b] for line in lines
    ]
    assert not upward, "A lower layer imports a higher one:\n" + "\n".join(upward)


def test_no_two_packages_import_each_other():
    graph = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(a for a in graph if reaches(a, a, {a}))
    assert not circles, f"Packages in an import circle: {circles}"


def test_the_layers_are_read_from_every_import():
    """The walk sees lazy imports too (a function-level import is a dependency)."""
    found = edges()
    assert ("telemetry", "clearinghouse.records") in found
    assert any(b == "consent" for _, b in found)
