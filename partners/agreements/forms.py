"""Portal forms for sharing agreements: the clause editor, and the reasons for suspending and
terminating.

The clause editor is a table with one row per record kind (more when a kind is shared for more
than one purpose) and, for each direction, a purpose select (or "not shared") and the kind's
shareable fields as checkboxes. It works without JavaScript: "Add a purpose" buttons submit the
form and the view renders it again with one more row for that kind.
"""

from django import forms

from ..models import AgreementVersion, Partner
from ..record_kinds import KINDS, PURPOSES, shareable_fields
from .clauses import DIRECTIONS, MANUFACTURER_TO_RETAILER, RETAILER_TO_MANUFACTURER

NOT_SHARED = ""
PURPOSE_CHOICES = [(NOT_SHARED, "Not shared"), *((p, p.replace("_", " ")) for p in PURPOSES)]
MAX_SLOTS = len(PURPOSES)


def _slots_name(kind):
    return f"{kind}-slots"


def _name(kind, slot, direction, part):
    return f"{kind}-{slot}-{direction}-{part}"


def _slots_from(clauses):
    """Rows each kind needs to show these clauses: the most purposes it has in one direction."""
    counts = {}
    for clause in clauses:
        key = (clause["kind"], clause["direction"])
        counts[key] = counts.get(key, 0) + 1
    return {kind: max([1, *(n for (k, _), n in counts.items() if k == kind)]) for kind in KINDS}


def _initial_from(clauses):
    initial, used = {}, {}
    for clause in clauses:
        key = (clause["kind"], clause["direction"])
        slot = used.get(key, 0)
        used[key] = slot + 1
        initial[_name(clause["kind"], slot, clause["direction"], "purpose")] = clause["purpose"]
        initial[_name(clause["kind"], slot, clause["direction"], "fields")] = list(clause["fields"])
    return initial


class ClauseEditorForm(forms.Form):
    """Counterpart (for a new agreement), the clause table, who credits loyalty points for a
    purchase, and a note."""

    purchase_points = forms.ChoiceField(
        label="Loyalty points for a purchase",
        choices=AgreementVersion.PurchasePoints.choices,
        required=False,  # not sent: the terms the editor started from
        widget=forms.RadioSelect,
        help_text="Reconciliation reports a purchase credited by both programmes only when "
        "one programme credits it.",
    )
    note = forms.CharField(
        label="Note to the other party (optional)",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why these terms, or what changed.",
    )

    def __init__(
        self,
        *args,
        partner,
        counterparts=None,
        counterpart=None,
        clauses=(),
        purchase_points=AgreementVersion.PurchasePoints.ONE,
        **kwargs,
    ):
        """``counterparts``: the partners to choose from for a new agreement; ``counterpart``:
        the other party when proposing a change instead. ``clauses`` and ``purchase_points``:
        the terms to start from."""
        clauses = list(clauses)
        kwargs.setdefault("initial", {})
        kwargs["initial"] = {
            **_initial_from(clauses),
            "purchase_points": purchase_points,
            **kwargs["initial"],
        }
        super().__init__(*args, **kwargs)
        self.partner = partner
        self.other_party = counterpart
        if counterparts is not None:
            other = "retailer" if partner.kind == Partner.Kind.MANUFACTURER else "manufacturer"
            self.fields["counterpart"] = forms.ModelChoiceField(
                queryset=counterparts,
                label=f"Propose to (an active {other})",
                empty_label=f"Choose a {other}…",
            )
            self.order_fields(["counterpart", "note"])
        slots = _slots_from(clauses)
        self.slots = {}
        for kind in KINDS:
            self.slots[kind] = self._slot_count(kind, slots[kind])
            self.fields[_slots_name(kind)] = forms.IntegerField(
                widget=forms.HiddenInput, initial=self.slots[kind], required=False
            )
            for slot in range(self.slots[kind]):
                for direction in DIRECTIONS:
                    self.fields[_name(kind, slot, direction, "purpose")] = forms.ChoiceField(
                        choices=PURPOSE_CHOICES, required=False, label="Purpose"
                    )
                    self.fields[_name(kind, slot, direction, "fields")] = forms.MultipleChoiceField(
                        choices=[(f, f.replace("_", " ")) for f in shareable_fields(kind)],
                        widget=forms.CheckboxSelectMultiple,
                        required=False,
                        label="Fields",
                    )

    def _slot_count(self, kind, needed):
        raw = self.data.get(_slots_name(kind)) if self.is_bound else None
        if raw is None:
            raw = self.initial.get(_slots_name(kind))
        try:
            wanted = int(raw)
        except (TypeError, ValueError):
            wanted = needed
        return max(needed, min(max(wanted, 1), MAX_SLOTS))

    @classmethod
    def with_another_row(cls, data, kind, **kwargs):
        """The posted form, unbound (so that no errors show), with one more row for ``kind``."""
        probe = cls(data, **kwargs)
        initial = {}
        for name, field in probe.fields.items():
            if isinstance(field, forms.MultipleChoiceField):
                initial[name] = data.getlist(name)
            elif name in data:
                initial[name] = data.get(name)
        if kind in KINDS:
            initial[_slots_name(kind)] = min(probe.slots[kind] + 1, MAX_SLOTS)
        return cls(initial=initial, **kwargs)

    def direction_labels(self):
        """Column headings, from the partner's point of view."""
        you = f"{self.partner.name} (you)"
        if self.partner.kind == Partner.Kind.MANUFACTURER:
            them = self.other_party.name if self.other_party else "the retailer"
            return {
                MANUFACTURER_TO_RETAILER: f"{you} shares with {them}",
                RETAILER_TO_MANUFACTURER: f"{them[:1].upper()}{them[1:]} shares with {you}",
            }
        them = self.other_party.name if self.other_party else "the manufacturer"
        return {
            RETAILER_TO_MANUFACTURER: f"{you} shares with {them}",
            MANUFACTURER_TO_RETAILER: f"{them[:1].upper()}{them[1:]} shares with {you}",
        }

    def columns(self):
        """The two directions, the partner's own sharing first."""
        labels = self.direction_labels()
        return [(direction, labels[direction]) for direction in labels]

    def rows(self):
        """The table's rows for the template: kind, whether the row is the kind's first, whether
        more rows may be added, and per direction the bound purpose select and field boxes."""
        rows = []
        for kind, spec in KINDS.items():
            for slot in range(self.slots[kind]):
                rows.append(
                    {
                        "kind": kind,
                        "label": spec.label,
                        "description": spec.description,
                        "slot": slot,
                        "first": slot == 0,
                        "last": slot == self.slots[kind] - 1,
                        "can_add": self.slots[kind] < MAX_SLOTS,
                        "cells": [
                            {
                                "direction": direction,
                                "heading": heading,
                                "purpose": self[_name(kind, slot, direction, "purpose")],
                                "fields": self[_name(kind, slot, direction, "fields")],
                            }
                            for direction, heading in self.columns()
                        ],
                    }
                )
        return rows

    def hidden_slots(self):
        return [self[_slots_name(kind)] for kind in KINDS]

    def clean_purchase_points(self):
        return self.cleaned_data["purchase_points"] or self.initial["purchase_points"]

    def clean(self):
        data = super().clean()
        clauses = []
        for kind in KINDS:
            for slot in range(self.slots[kind]):
                for direction in DIRECTIONS:
                    purpose_name = _name(kind, slot, direction, "purpose")
                    fields_name = _name(kind, slot, direction, "fields")
                    purpose, fields = data.get(purpose_name), data.get(fields_name) or []
                    if purpose and not fields:
                        self.add_error(
                            fields_name,
                            "Choose at least one field to share, or set the purpose to "
                            "“Not shared”.",
                        )
                    elif fields and not purpose:
                        self.add_error(
                            purpose_name, "Choose a purpose for these fields, or clear them."
                        )
                    elif purpose:
                        clauses.append(
                            {
                                "kind": kind,
                                "purpose": purpose,
                                "direction": direction,
                                "fields": fields,
                            }
                        )
        if not clauses and not self.errors:
            raise forms.ValidationError("Share at least one record kind in one direction.")
        data["clauses"] = clauses
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason (shown to the other party)",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class TerminateForm(ReasonForm):
    confirm = forms.BooleanField(
        label="I understand that terminating is final: nothing is shared under this agreement "
        "any more, and a new agreement has to be proposed and countersigned from scratch.",
        required=True,
        error_messages={"required": "Tick the box to confirm that you want to terminate."},
    )


class DiffForm(forms.Form):
    """Which two versions to compare."""

    def __init__(self, *args, numbers, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("0", "Nothing (no agreement)")] + [(str(n), f"Version {n}") for n in numbers]
        self.fields["from"] = forms.TypedChoiceField(
            choices=choices, coerce=int, label="From", required=True
        )
        self.fields["to"] = forms.TypedChoiceField(
            choices=choices[1:], coerce=int, label="To", required=True
        )
