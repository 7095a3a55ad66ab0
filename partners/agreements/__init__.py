"""Sharing agreements between a manufacturer and a retailer: clauses, services and selectors.

The core's visibility decision asks ``rules_toward(partner=…)`` / ``rules_from(partner=…)``;
portal and API read through the other selectors; every change goes through the services.
"""

from .clauses import (
    DIRECTIONS,
    MANUFACTURER_TO_RETAILER,
    RETAILER_TO_MANUFACTURER,
    agreement_diff,
    clauses_normalise,
)
from .selectors import (
    SharingRule,
    agreement_awaiting,
    agreement_counterparts,
    agreement_history,
    agreement_list,
    rules_from,
    rules_toward,
)
from .services import (
    agreement_countersign,
    agreement_propose,
    agreement_reject,
    agreement_resume,
    agreement_suspend,
    agreement_terminate,
    agreement_withdraw,
)

__all__ = [
    "DIRECTIONS",
    "MANUFACTURER_TO_RETAILER",
    "RETAILER_TO_MANUFACTURER",
    "SharingRule",
    "agreement_awaiting",
    "agreement_counterparts",
    "agreement_countersign",
    "agreement_diff",
    "agreement_history",
    "agreement_list",
    "agreement_propose",
    "agreement_reject",
    "agreement_resume",
    "agreement_suspend",
    "agreement_terminate",
    "agreement_withdraw",
    "clauses_normalise",
    "rules_from",
    "rules_toward",
]
