"""Partner-scoped managers fail closed (DESIGN invariants 2 and 9).

Every model whose default manager is partner-scoped is found in the app registry, not listed
here, and every way of running its queryset must refuse until the queryset says
``for_partner(partner)`` or ``unscoped(reason)``. Django's machinery keeps working (validation,
the operator's admin, related managers, cascades, ``dumpdata``, DRF's uniqueness checks), and
every ``unscoped`` call of the production code is in ``REVIEWED`` below with its reason: a new
one fails ``test_every_unscoped_read_is_reviewed`` until it is added there on review.
"""

import ast
import copy
import json
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import Count, Exists, OuterRef, Prefetch, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from rest_framework import serializers

from clearinghouse.common.api.fields import StrictModelSerializer
from partners.models import Membership, Partner, PartnerEvent, Role
from partners.tenancy import PartnerScopedQuerySet, TenancyError, unscoped_block

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ["clearinghouse", "partners", "consent", "telemetry"]
GTIN = "04012345678901"


def scoped_models():
    return sorted(
        (
            model
            for model in apps.get_models()
            if issubclass(model._default_manager._queryset_class, PartnerScopedQuerySet)
        ),
        key=lambda model: model._meta.label,
    )


def _some_instance(model):
    obj = model()
    obj.pk = uuid.uuid4() if model._meta.pk.get_internal_type() == "UUIDField" else 1
    return obj


# Every way of running a queryset, or of taking its rows into another query.
EVALUATIONS = {
    "iterate": lambda qs: list(qs),
    "len": len,
    "bool": bool,
    "index": lambda qs: qs[0],
    "get": lambda qs: qs.get(),
    "first": lambda qs: qs.first(),
    "last": lambda qs: qs.last(),
    "count": lambda qs: qs.count(),
    "exists": lambda qs: qs.exists(),
    "aggregate": lambda qs: qs.aggregate(n=Count("pk")),
    "update": lambda qs: qs.update(),
    "delete": lambda qs: qs.delete(),
    "iterator": lambda qs: next(qs.iterator(), None),
    "in_bulk": lambda qs: qs.in_bulk(),
    "values": lambda qs: list(qs.values("pk")),
    "values_list": lambda qs: list(qs.values_list("pk", flat=True)),
    "contains": lambda qs: qs.contains(_some_instance(qs.model)),
    "explain": lambda qs: qs.explain(),
    "get_or_create": lambda qs: qs.get_or_create(pk=_some_instance(qs.model).pk),
    "raw": lambda qs: list(qs.raw(f"SELECT * FROM {qs.model._meta.db_table}")),
    "pk__in": lambda qs: list(qs.model._base_manager.filter(pk__in=qs.values("pk"))),
    "Subquery": lambda qs: qs.model._base_manager.annotate(x=Subquery(qs.values("pk")[:1])),
    "Exists": lambda qs: qs.model._base_manager.filter(Exists(qs.filter(pk=OuterRef("pk")))),
    "union": lambda qs: qs.model._default_manager.unscoped("test").union(qs),
    "or": lambda qs: qs.model._default_manager.unscoped("test") | qs,
}


def test_partner_scoped_models_are_found_in_the_registry():
    found = {model._meta.label for model in scoped_models()}
    assert "partners.Partner" in found and len(found) >= 20
    # Every model that names its owner is scoped by that owner, and the other way round.
    declared = {
        model._meta.label
        for model in apps.get_models()
        if getattr(model, "tenant_path", None) or getattr(model, "tenant_paths", None)
    }
    assert declared == found


@pytest.mark.parametrize("how", sorted(EVALUATIONS))
@pytest.mark.parametrize("model", scoped_models(), ids=lambda model: model._meta.label)
def test_an_unscoped_query_refuses_to_run(db, model, how):
    with pytest.raises(TenancyError):
        EVALUATIONS[how](model._default_manager.filter())


@pytest.mark.parametrize("model", scoped_models(), ids=lambda model: model._meta.label)
def test_for_partner_and_unscoped_run_for_every_scoped_model(model, make_partner):
    partner, _ = make_partner()
    assert isinstance(list(model.objects.for_partner(partner).order_by()), list)
    assert model.objects.for_partner(partner).count() >= 0
    assert model.objects.unscoped("test: every partner's rows").exists() in (True, False)
    # A queryset that says nothing, but from which nothing can come, is harmless.
    assert list(model.objects.none()) == []


def test_the_scope_survives_chaining_and_copying(make_partner):
    a, _ = make_partner()
    b, _ = make_partner()
    mine = (
        Membership.objects.for_partner(a)
        .filter(role=Role.ADMIN)
        .exclude(pk=None)
        .select_related("user", "partner")
        .order_by("pk")
        .distinct()
    )
    assert mine.scope.partner_id == a.pk
    assert [m.partner_id for m in mine] == [a.pk]
    assert list(mine.values_list("partner_id", flat=True)) == [a.pk]
    assert [m.partner_id for m in copy.deepcopy(mine)] == [a.pk]
    assert mine.all()[:1].get().partner_id == a.pk
    assert mine.using("default").count() == 1

    every = Membership.objects.unscoped("test: both partners").filter(role=Role.ADMIN).order_by()
    assert every.scope.reason == "test: both partners"
    assert {a.pk, b.pk} <= set(every.values_list("partner_id", flat=True))
    assert every.filter(partner=b).get().partner_id == b.pk


def test_a_scoped_queryset_may_be_a_subquery_and_an_unscoped_one_may_not(make_partner):
    a, _ = make_partner()
    b, _ = make_partner()
    partners = Partner.objects.unscoped("test: both partners")
    staffed = partners.filter(pk__in=Membership.objects.for_partner(a).values("partner_id"))
    assert list(staffed) == [a]
    has_staff = Exists(Membership.objects.for_partner(a).filter(partner=OuterRef("pk")))
    flags = dict(partners.filter(pk__in=[a.pk, b.pk]).annotate(s=has_staff).values_list("pk", "s"))
    assert flags == {a.pk: True, b.pk: False}
    both = Membership.objects.for_partner(a).union(Membership.objects.for_partner(b))
    assert len(both) == 2

    with pytest.raises(TenancyError):
        partners.filter(pk__in=Membership.objects.values("partner_id"))
    with pytest.raises(TenancyError):
        partners.annotate(s=Exists(Membership.objects.filter(partner=OuterRef("pk"))))
    with pytest.raises(TenancyError):
        Membership.objects.for_partner(a).union(Membership.objects.all())
    with pytest.raises(TenancyError):
        Membership.objects.for_partner(a) | Membership.objects.all()
    # ``exclude()`` across a relation builds its own inner query: it only filters the outer rows.
    assert list(Partner.objects.for_partner(a).exclude(memberships__role=Role.VIEWER)) == [a]


def test_unscoped_needs_a_reason(db):
    with pytest.raises(TypeError):
        Membership.objects.unscoped()
    with pytest.raises(TypeError):
        Membership.objects.unscoped(None)
    for empty in ("", "   "):
        with pytest.raises(ValueError):
            Membership.objects.unscoped(empty)
        with pytest.raises(ValueError), unscoped_block(empty):
            pass
    with pytest.raises(TenancyError):
        Membership.objects.for_partner(None)


def test_an_unscoped_block_lets_django_read_and_ends_with_the_block(make_partner):
    make_partner()
    with unscoped_block("test: Django's own machinery"):
        assert Membership.objects.count() >= 1
    with pytest.raises(TenancyError):
        Membership.objects.count()
    assert "not scoped to a partner" in repr(Membership.objects.all())


def test_creating_rows_is_not_a_read(make_partner):
    partner, _ = make_partner()
    PartnerEvent.objects.create(partner=partner, action="test.created")
    PartnerEvent.objects.bulk_create([PartnerEvent(partner=partner, action="test.bulk")])
    actions = set(PartnerEvent.objects.for_partner(partner).values_list("action", flat=True))
    assert {"test.created", "test.bulk"} <= actions


def test_rows_reached_through_an_object_in_hand_are_scoped_by_it(make_partner):
    a, _ = make_partner()
    make_partner()
    assert [m.partner_id for m in a.memberships.all()] == [a.pk]
    assert a.memberships.filter(role=Role.ADMIN).count() == 1
    held = Partner.objects.for_partner(a).prefetch_related("memberships").get()
    assert [m.partner_id for m in held.memberships.all()] == [a.pk]
    admins = Prefetch("memberships", queryset=Membership.objects.filter(role=Role.ADMIN))
    everyone = Partner.objects.unscoped("test: every partner").prefetch_related(admins)
    assert all(m.partner_id == p.pk for p in everyone for m in p.memberships.all())
    membership = a.memberships.get()
    assert membership.partner == a  # a foreign key goes through the plain base manager


def test_get_object_or_404_answers_a_foreign_object_as_missing(make_partner):
    a, _ = make_partner()
    b, _ = make_partner()
    theirs = b.memberships.get()
    with pytest.raises(Http404):
        get_object_or_404(Membership.objects.for_partner(a), pk=theirs.pk)
    assert get_object_or_404(Membership.objects.for_partner(b), pk=theirs.pk) == theirs
    with pytest.raises(TenancyError):
        get_object_or_404(Membership, pk=theirs.pk)


def test_validation_checks_uniqueness_across_partners(make_partner):
    from telemetry.models import Device
    from telemetry.services import devices_register

    a, _ = make_partner()
    b, _ = make_partner()
    twin = Partner(name="Twin", slug=a.slug, kind=b.kind, contact_email="twin@example.org")
    with pytest.raises(ValidationError) as clash:
        twin.full_clean()
    assert "slug" in clash.value.message_dict
    devices_register(partner=a, rows=[{"serial": "SER-1", "gtin": GTIN, "model_name": "DW"}])
    again = Device(manufacturer=a, serial="SER-1", gtin=GTIN, model_name="DW")
    with pytest.raises(ValidationError):
        again.full_clean()
    Device(manufacturer=b, serial="SER-1", gtin=GTIN, model_name="DW").full_clean()


def test_drf_uniqueness_checks_read_across_partners(make_partner):
    from telemetry.models import Device
    from telemetry.services import devices_register

    a, _ = make_partner()

    class PartnerIn(StrictModelSerializer):
        class Meta:
            model = Partner
            fields = ["name", "slug", "kind", "contact_email"]

    data = {"name": "Twin", "slug": a.slug, "kind": a.kind, "contact_email": "t@example.org"}
    serializer = PartnerIn(data=data)
    assert not serializer.is_valid()
    assert "slug" in serializer.errors

    class DeviceIn(StrictModelSerializer):
        manufacturer = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.for_partner(a))

        class Meta:
            model = Device
            fields = ["manufacturer", "serial", "gtin", "model_name"]

    devices_register(partner=a, rows=[{"serial": "SER-1", "gtin": GTIN, "model_name": "DW"}])
    data = {"manufacturer": str(a.pk), "serial": "SER-1", "gtin": GTIN, "model_name": "DW"}
    serializer = DeviceIn(data=data)
    assert not serializer.is_valid()
    assert "non_field_errors" in serializer.errors


def test_deleting_a_partner_cascades_through_plain_managers(make_partner):
    a, _ = make_partner(status=Partner.Status.PENDING)
    a.delete()
    assert not Membership.objects.unscoped("test: the deleted partner").filter(partner_id=a.pk)


def test_dumpdata_exports_every_partners_rows(make_partner):
    a, _ = make_partner()
    b, _ = make_partner()
    out = StringIO()
    call_command("dumpdata", "partners.partner", stdout=out)
    slugs = {row["fields"]["slug"] for row in json.loads(out.getvalue())}
    assert {a.slug, b.slug} <= slugs


@pytest.fixture
def everything(make_partner, issue_key, operator):
    """A little of every partner-scoped kind of row, for the operator's admin."""
    from partners import services
    from partners.agreements.services import agreement_countersign, agreement_propose
    from telemetry.services import devices_register

    maker, maker_admin = make_partner(name="Maker")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Shop")
    issue_key(maker, maker_admin)
    services.staff_invite(
        partner=maker, email="new@example.org", role=Role.VIEWER, invited_by=maker_admin
    )
    clause = {
        "kind": "warranty_registration",
        "purpose": "warranty",
        "direction": "manufacturer_to_retailer",
        "fields": ["product"],
    }
    version = agreement_propose(
        proposer=maker, counterpart=shop, actor=maker_admin, clauses=[clause]
    )
    agreement_countersign(version=version, partner=shop, actor=shop_admin)
    devices_register(partner=maker, rows=[{"serial": "SER-1", "gtin": GTIN, "model_name": "DW"}])
    return maker, shop


def _admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_the_operators_admin_shows_every_partners_rows(client, operator, everything):
    client.force_login(operator)
    for model, model_admin in admin.site._registry.items():
        changelist = client.get(_admin_url(model, "changelist"))
        assert changelist.status_code == 200, model
        for name in model_admin.list_filter:
            field = model._meta.get_field(name) if isinstance(name, str) else None
            if field is not None and field.is_relation:
                some = Partner.objects.for_partner(everything[0]).get()
                filtered = client.get(
                    _admin_url(model, "changelist"), {f"{name}__id__exact": some.pk}
                )
                assert filtered.status_code == 200, (model, name)
        row = model._base_manager.order_by("pk").first()
        if row is not None:
            assert client.get(_admin_url(model, "change", row.pk)).status_code == 200, model
        assert client.get(_admin_url(model, "add")).status_code in (200, 403), model


def test_the_operators_admin_form_checks_choices_and_uniqueness(client, operator, everything):
    from telemetry.models import TelemetrySettings

    maker, _ = everything
    client.force_login(operator)
    url = _admin_url(TelemetrySettings, "add")
    assert client.post(url, {"partner": maker.pk, "retention_days": 90}).status_code == 302
    again = client.post(url, {"partner": maker.pk, "retention_days": 60})
    assert again.status_code == 200 and "already exists" in again.content.decode()
    kept = TelemetrySettings.objects.for_partner(maker).get()
    assert kept.retention_days == 90


def test_the_operators_admin_saves_a_partner_with_its_staff_inline(client, operator, everything):
    maker, _ = everything
    membership = maker.memberships.get()
    client.force_login(operator)
    prefix = "memberships"
    data = {
        "name": maker.name,
        "slug": maker.slug,
        "kind": maker.kind,
        "contact_email": maker.contact_email,
        f"{prefix}-TOTAL_FORMS": "1",
        f"{prefix}-INITIAL_FORMS": "1",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
        f"{prefix}-0-id": membership.pk,
        f"{prefix}-0-partner": maker.pk,
        f"{prefix}-0-user": membership.user_id,
        f"{prefix}-0-role": Role.ANALYST,
        f"{prefix}-0-created_at_0": membership.created_at.date().isoformat(),
        f"{prefix}-0-created_at_1": membership.created_at.time().strftime("%H:%M:%S"),
    }
    response = client.post(_admin_url(Partner, "change", maker.pk), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    membership.refresh_from_db()
    assert membership.role == Role.ANALYST


# --- review ------------------------------------------------------------------------------------

# Every unscoped read of the production code: (module, enclosing function, reason). Reviewed:
# each reads every partner's rows (or rows no partner owns yet) for the reason it states.
REVIEWED = {
    (
        "clearinghouse.management.commands.dumpdata",
        "Command.handle",
        "the operator's dumpdata exports every partner's rows",
    ),
    (
        "clearinghouse.reconciliation.engine.run",
        "run_announce",
        "the task announces the run id it was given",
    ),
    (
        "clearinghouse.reconciliation.management.commands.reconcile",
        "Command.handle",
        "the operator's command names any pair",
    ),
    (
        "clearinghouse.reconciliation.notify",
        "_emit",
        "the parties of the findings a run gave, by id",
    ),
    (
        "clearinghouse.reconciliation.notify",
        "_emit",
        "the parties of these findings, asked whether they listen",
    ),
    (
        "clearinghouse.reconciliation.selectors",
        "_registered",
        "the finding's own manufacturer's registrations, matched to the outer row",
    ),
    (
        "clearinghouse.reconciliation.selectors",
        "customer_prompts",
        "the customer's own findings, across pairs",
    ),
    (
        "clearinghouse.reconciliation.services",
        "findings_forget_erased",
        "erasure reaches every partner's findings of them",
    ),
    (
        "clearinghouse.reconciliation.tasks",
        "announce_sweep",
        "the sweep works for every pair's runs",
    ),
    (
        "clearinghouse.reconciliation.tasks",
        "reconcile_pair_task",
        "the reconciliation engine reads both parties of a pair",
    ),
    (
        "clearinghouse.records.announce",
        "_emit",
        "the submitters of records the partner may see, by name",
    ),
    (
        "clearinghouse.records.announce",
        "announce_after_grant",
        "a consent's grantee, asked whether it listens",
    ),
    (
        "clearinghouse.records.announce",
        "listening_counterparts",
        "its counterparts, asked whether they listen",
    ),
    (
        "clearinghouse.records.announce",
        "records_announce_granted",
        "the task runs for the grant id it was given",
    ),
    (
        "clearinghouse.records.csv_upload",
        "upload_process",
        "the task processes the upload id it was given",
    ),
    (
        "clearinghouse.records.receivers",
        "export_records",
        "the customer sees what every partner recorded of them",
    ),
    (
        "clearinghouse.records.receivers",
        "tombstone_records",
        "erasure reaches every partner's records of the customer",
    ),
    (
        "clearinghouse.records.selectors",
        "record_counts",
        "the counterparts an agreement names, asked what they see",
    ),
    (
        "clearinghouse.records.tasks",
        "announce_shared",
        "the task runs for the submitter id it was given",
    ),
    (
        "clearinghouse.records.visibility",
        "visible_records",
        "the visibility decision restricts it by the rule above",
    ),
    ("consent.notices", "_catch_up", "the sweep works for every grantee"),
    ("consent.notices", "_catch_up", "whether the outer grant has its notice"),
    ("consent.notices", "customer_erasure_recipients", "what each recipient of the erasure said"),
    (
        "consent.notices",
        "customer_withdrawals",
        "the customer's own withdrawals, from every partner",
    ),
    (
        "consent.notices",
        "customer_withdrawals",
        "what each recipient of the customer's withdrawals said",
    ),
    ("consent.notices", "notice_acknowledge", "locks again the notice the caller holds"),
    (
        "consent.notices",
        "notice_acknowledge_by_webhook",
        "restricted to the partner id that signed it",
    ),
    (
        "consent.notices",
        "notices_capture_for_erasure",
        "every partner that read the customer's data, whoever it is",
    ),
    ("consent.notices", "notices_chase", "the sweep works for every partner's notices"),
    ("consent.notices", "notices_for_revocation", "the task runs for the grant id it was given"),
    (
        "consent.notices",
        "notices_send_for_erasure",
        "an erasure's notices go to every recipient",
    ),
    ("consent.selectors", "consent_partners", "the customer's own consents, to every partner"),
    ("consent.selectors", "customer_grants", "the customer's own consents, to every partner"),
    ("consent.selectors", "customer_overview", "the customer's own consents, to every partner"),
    (
        "consent.services.grants",
        "consent_record_expiries",
        "the beat records every partner's expiries",
    ),
    ("consent.services.grants", "consent_revoke", "locks again the grant the caller holds"),
    (
        "consent.services.erasure",
        "customer_erase",
        "erasure ends the customer's consents to every partner",
    ),
    ("consent.tasks", "send_notice_email", "the task runs for the notice id it was given"),
    (
        "partners.admin",
        "OperatorView.get_changelist_instance",
        "the operator's admin filters by any partner",
    ),
    (
        "partners.admin",
        "OperatorView.get_field_queryset",
        "the operator's admin offers every partner as a choice",
    ),
    (
        "partners.admin",
        "OperatorView.changeform_view",
        "the operator's admin edits any partner's rows",
    ),
    (
        "partners.admin",
        "OperatorView.get_queryset",
        "the operator's admin sees every partner's rows",
    ),
    (
        "partners.agreements.selectors",
        "agreement_counterparts",
        "naming a counterpart needs no access to its objects, only its name",
    ),
    (
        "partners.agreements.selectors",
        "pairs_in_force",
        "the reconciliation scheduler runs every pair",
    ),
    (
        "partners.agreements.services",
        "_fresh_partners",
        "the service re-reads the status of both parties",
    ),
    (
        "clearinghouse.common.api.fields",
        "_across_partners",
        "uniqueness holds across every partner's rows, like the constraint",
    ),
    (
        "clearinghouse.demo.partners",
        "_partner",
        "the demo loader finds the demo partners it made before",
    ),
    (
        "partners.selectors",
        "active_partner_by_slug",
        "naming a counterpart needs no access to its objects",
    ),
    (
        "partners.selectors",
        "invitation_from_token",
        "the signed link names the invitation; no staff yet",
    ),
    (
        "partners.selectors",
        "membership_for_user",
        "the signed-in user's own membership names their partner",
    ),
    ("partners.services", "_unique_slug", "a new partner's slug differs from every other's"),
    ("partners.services", "credential_create", "a key's prefix differs from every partner's keys'"),
    ("partners.services", "staff_invite", "a person belongs to one organisation at most"),
    ("partners.tasks", "expire_invitations", "housekeeping closes every partner's expired ones"),
    (
        "partners.tasks",
        "send_invitation_email",
        "the task runs for the invitation id it was given",
    ),
    (
        "partners.tasks",
        "send_partner_status_email",
        "the task runs for the partner id it was given",
    ),
    (
        "partners.tenancy",
        "PartnerScopedModel.validate_constraints",
        "uniqueness holds across every partner's rows, like the constraint",
    ),
    (
        "partners.tenancy",
        "PartnerScopedModel.validate_unique",
        "uniqueness holds across every partner's rows, like the constraint",
    ),
    ("partners.webhooks.services", "_claim", "the worker sends the delivery id it was given"),
    ("partners.webhooks.services", "_give_up", "the worker gives up the delivery it claimed"),
    ("partners.webhooks.services", "_record", "the worker records the delivery it claimed"),
    (
        "partners.webhooks.services",
        "delivery_redeliver",
        "locks again the delivery the caller holds",
    ),
    (
        "partners.webhooks.services",
        "webhooks_enqueue_due",
        "the sweep works for every partner's deliveries",
    ),
    ("telemetry.care", "_maker", "the maker of a device in hand"),
    ("telemetry.care", "consenting_retailers", "the retailers of the maker's agreements in force"),
    (
        "telemetry.management.commands.simulate_telemetry",
        "Command.handle",
        "a command acts for the partner it is told to, by slug",
    ),
    (
        "telemetry.partitions",
        "longest_retention_days",
        "shared partitions outlive every maker's longest",
    ),
    ("telemetry.partitions", "partitions_maintain", "retention runs for every maker"),
    ("telemetry.services", "_signal_open", "the signal just inserted, by its id"),
    (
        "telemetry.services",
        "_signals_note_clearing",
        "the rule's own signals on its maker's devices",
    ),
    (
        "telemetry.services",
        "pending_batch_process",
        "the task runs for the batch id it was given",
    ),
    ("telemetry.services", "pending_batches_due", "the sweep works for every maker's batches"),
    (
        "telemetry.services",
        "rollups_pending_refresh",
        "restricted to the manufacturer id the task was given",
    ),
    ("telemetry.services", "rules_evaluate", "the rules of the devices' own maker"),
    ("telemetry.services", "rules_evaluate", "the task runs for the device ids it was given"),
    ("telemetry.services", "signal_transition", "locks again the signal the caller holds"),
    (
        "telemetry.services",
        "signals_resolve_cleared",
        "the sweep resolves every maker's cleared signals",
    ),
    ("telemetry.tasks", "evaluate_no_data", "each rule's own maker's devices of its model"),
    ("telemetry.tasks", "evaluate_no_data", "the beat works for every manufacturer"),
}


def _production_modules():
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def _unscoped_calls(tree):
    """(enclosing function, call) of every call named ``unscoped`` or ``unscoped_block``."""

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call):
                func = child.func
                name = getattr(func, "attr", None) or getattr(func, "id", None)
                if name in ("unscoped", "unscoped_block"):
                    yield ".".join(scope) or "<module>", child
            yield from visit(child, scope)

    yield from visit(tree, [])


def test_every_unscoped_read_is_reviewed():
    found, unnamed = set(), []
    for module, path in _production_modules():
        for function, call in _unscoped_calls(ast.parse(path.read_text())):
            reason = call.args[0] if call.args else None
            if not (
                isinstance(reason, ast.Constant)
                and isinstance(reason.value, str)
                and reason.value.strip()
            ):
                unnamed.append(f"{module}:{call.lineno}")
                continue
            found.add((module, function, reason.value))
    assert not unnamed, f"unscoped() needs its reason as a string literal: {unnamed}"
    assert not found - REVIEWED, f"new unscoped reads, to review and add: {found - REVIEWED}"
    assert not REVIEWED - found, f"gone, to remove from REVIEWED: {REVIEWED - found}"


def test_no_production_module_guards_anything_with_assert():
    """``python -O`` strips ``assert``: a check that matters is an ``if`` that raises."""
    found = [
        f"{module}:{node.lineno}"
        for module, path in _production_modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert not found, found


def test_no_production_module_takes_the_plain_managers_around_the_scope():
    """``_base_manager`` stays plain for Django (cascades, foreign keys of an object in hand);
    hints mark a queryset as reached through an object in hand. Neither is for our code."""
    found = [
        f"{module}:{node.lineno}: {node.attr}"
        for module, path in _production_modules()
        if module != "partners.tenancy"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr in ("_base_manager", "db_manager", "_add_hints")
    ]
    assert not found, found
