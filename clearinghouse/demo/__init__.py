"""The demo world that ``manage.py load_demo`` loads, one module per layer (partners, consent,
records, telemetry): it builds every object through the layers' own services, and only the demo
command (and the tests that walk the demo) use it."""
