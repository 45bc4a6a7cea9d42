"""Conformance suites, one module per area (``test_<area>.py``); see ``conformance.plugin``."""
