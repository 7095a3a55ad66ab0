"""The fixed catalogue of metrics a device may report. Code, so that it is reviewed like code."""

METRICS = {
    "drain_pump_current_a": "Drain pump current (A)",
    "water_temp_c": "Water temperature (°C)",
    "filter_hours": "Filter hours (cumulative)",
    "error_code": "Error code",
    "door_cycles": "Door cycles (cumulative)",
    "power_w": "Power (W)",
}
