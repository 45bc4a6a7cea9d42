"""The ``carbench`` command: scenarios, virtual time, orchestration and reports."""
