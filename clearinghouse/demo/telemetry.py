"""The demo's telemetry: Nordwind's connected dishwashers (the demo units NW-DI-00001 …), three
days of readings, and a drain-pump rule that trips on Alice's dishwasher NW-DI-00001 — which,
as Alice consented to service sharing with Brightmart, becomes a proactive service request on the
unit's timeline and a prompt in her dashboard."""

from telemetry import services, simulate
from telemetry.models import ServiceRule

from . import records as records_demo

DEMO_DEVICES = 20
DEMO_DAYS = 3
PUMP_RULE = "Drain pump wearing out"


def load(partners, step, devices=DEMO_DEVICES, days=DEMO_DAYS):
    maker = partners["maker"]
    units = [records_demo.unit("dishwasher", n) for n in range(1, devices + 1)]
    services.devices_register(
        partner=maker,
        rows=[
            {
                "serial": u["serial"],
                "gtin": u["gtin"],
                "model_name": "dishwasher",
                "firmware": "4.2.1",
            }
            for u in units
        ],
    )
    if not ServiceRule.objects.for_partner(maker).filter(name=PUMP_RULE).exists():
        services.rule_create(
            partner=maker,
            model_name="dishwasher",
            name=PUMP_RULE,
            issue="Drain pump current above 1.5 A for an hour: the pump is wearing out",
            prompt_text="Your dishwasher's drain pump shows signs of failure — book a free check?",
            operator="or",
            conditions=[
                {
                    "kind": "threshold",
                    "metric": "drain_pump_current_a",
                    "op": ">",
                    "value": 1.5,
                    "minutes": 60,
                },
                {
                    "kind": "count",
                    "metric": "error_code",
                    "value": 24,
                    "at_least": 3,
                    "minutes": 720,
                },
            ],
        )
        services.rule_create(
            partner=maker,
            model_name="dishwasher",
            name="Silent appliance",
            issue="The appliance has not reported for a day",
            operator="and",
            conditions=[{"kind": "no_data", "minutes": 24 * 60}],
        )
    serials = [u["serial"] for u in units]
    rows = simulate.readings(serials, days=days, drifting=set(serials[0:8:7]), silent={serials[-1]})
    totals = simulate.post(maker, rows)
    ids = [d.pk for d in services.Device.objects.for_partner(maker).filter(serial__in=serials)]
    services.rollups_refresh(device_ids=ids, start=_ago(days + 1), end=_ago(0))
    opened = services.rules_evaluate(device_ids=ids)
    step(
        f"{len(serials)} connected dishwashers, {totals['accepted']} new readings, "
        f"{len(opened)} service signals opened"
    )


def _ago(days):
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(days=days)
