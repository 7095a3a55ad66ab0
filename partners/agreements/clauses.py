"""Clauses of a sharing agreement: their vocabulary, their validation and the difference between
two versions.

A clause says that one party shares records of one kind, for one purpose, with the other, and
which of the kind's fields (``record_kinds.shareable_fields``) the receiver sees. Clauses are
stored normalised: fields de-duplicated and sorted, clauses sorted by (kind, purpose, direction),
so that two versions with the same terms compare equal.
"""

from django.core.exceptions import ValidationError

from ..record_kinds import KINDS, PURPOSES, shareable_fields

MANUFACTURER_TO_RETAILER = "manufacturer_to_retailer"
RETAILER_TO_MANUFACTURER = "retailer_to_manufacturer"
DIRECTIONS = (MANUFACTURER_TO_RETAILER, RETAILER_TO_MANUFACTURER)
CLAUSE_KEYS = frozenset({"kind", "purpose", "direction", "fields"})


def clause_key(clause):
    """(kind, purpose, direction): what identifies a clause within a version."""
    return (clause["kind"], clause["purpose"], clause["direction"])


def _shown(value):
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _check_one(n, clause):
    """(normalised clause or None, [messages]) for the n-th clause."""
    where = f"Clause {n}"
    if not isinstance(clause, dict):
        return None, [f"{where}: must be an object with kind, purpose, direction and fields."]
    errors = []
    unknown = sorted(str(k) for k in set(clause) - CLAUSE_KEYS)
    if unknown:
        errors.append(f"{where}: unknown keys {', '.join(_shown(k) for k in unknown)}.")
    kind, purpose = clause.get("kind"), clause.get("purpose")
    direction, fields = clause.get("direction"), clause.get("fields")
    if not isinstance(kind, str) or kind not in KINDS:
        errors.append(
            f"{where}: “{_shown(kind)}” is not a record kind; choose one of {', '.join(KINDS)}."
        )
    if not isinstance(purpose, str) or purpose not in PURPOSES:
        errors.append(
            f"{where}: “{_shown(purpose)}” is not a purpose; choose one of {', '.join(PURPOSES)}."
        )
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        errors.append(
            f"{where}: “{_shown(direction)}” is not a direction; choose "
            f"{MANUFACTURER_TO_RETAILER} or {RETAILER_TO_MANUFACTURER}."
        )
    if not isinstance(fields, list | tuple) or not all(isinstance(f, str) for f in fields):
        errors.append(f"{where}: fields must be a list of field names.")
    elif not fields:
        errors.append(f"{where}: share at least one field.")
    elif isinstance(kind, str) and kind in KINDS:
        allowed = shareable_fields(kind)
        bad = sorted(set(fields) - set(allowed))
        if bad:
            errors.append(
                f"{where}: {kind} has no shareable field {', '.join(_shown(f) for f in bad)}; "
                f"choose from {', '.join(allowed)}."
            )
    if errors:
        return None, errors
    return {
        "kind": kind,
        "purpose": purpose,
        "direction": direction,
        "fields": sorted(set(fields)),
    }, []


def clauses_normalise(clauses):
    """The clauses validated and in their stored form, or ``ValidationError({"clauses": [...]})``
    naming every problem (unknown kind, purpose, direction or field, no fields, a repeated
    (kind, purpose, direction))."""
    if not isinstance(clauses, list | tuple):
        raise ValidationError({"clauses": "Clauses must be a list."})
    if not clauses:
        raise ValidationError({"clauses": "Share at least one record kind in one direction."})
    errors, normalised, seen = [], [], {}
    for n, clause in enumerate(clauses, 1):
        clean, problems = _check_one(n, clause)
        errors.extend(problems)
        if clean is None:
            continue
        key = clause_key(clean)
        if key in seen:
            errors.append(
                f"Clause {n} repeats clause {seen[key]} ({clean['kind']}, {clean['purpose']}, "
                f"{clean['direction']}); merge their fields into one clause."
            )
            continue
        seen[key] = n
        normalised.append(clean)
    if errors:
        raise ValidationError({"clauses": errors})
    return sorted(normalised, key=clause_key)


def _clauses_of(version):
    if version is None:
        return []
    return version.clauses if hasattr(version, "clauses") else list(version)


def agreement_diff(old_version, new_version):
    """What changes from ``old_version`` to ``new_version`` (versions, clause lists, or None for
    "nothing"): ``{"added": [clause], "removed": [clause], "changed": [{"clause": (kind,
    purpose, direction), "fields_added": [...], "fields_removed": [...]}]}``, each sorted."""
    old = {clause_key(c): c for c in _clauses_of(old_version)}
    new = {clause_key(c): c for c in _clauses_of(new_version)}
    changed = []
    for key in sorted(old.keys() & new.keys()):
        before, after = set(old[key]["fields"]), set(new[key]["fields"])
        if before != after:
            changed.append(
                {
                    "clause": key,
                    "fields_added": sorted(after - before),
                    "fields_removed": sorted(before - after),
                }
            )
    return {
        "added": [new[k] for k in sorted(new.keys() - old.keys())],
        "removed": [old[k] for k in sorted(old.keys() - new.keys())],
        "changed": changed,
    }


def clauses_unchanged(old_version, new_version):
    """The clauses that both versions hold with the same fields (the rest of the diff page)."""
    old = {clause_key(c): c for c in _clauses_of(old_version)}
    return [c for c in _clauses_of(new_version) if old.get(clause_key(c)) == c]
