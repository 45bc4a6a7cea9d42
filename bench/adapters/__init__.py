"""Terminal adapters: how the bench drives a terminal under test (``conformance.dut.Dut``).

``reference``: the reference terminal in the bench's event loop and clock; ``process``: the
same terminal as a program of its own (``python -m reference_terminal``); ``external``: a device
reached through its management interface, a power switch and prompts. Each kind is a
``carbench.adapters`` entry point (pyproject.toml) naming its adapter class, whose constructor
is the one factory signature of ``conformance.adapters.AdapterFactory``; the suites find them
there (``conformance.adapters.load_adapter``), and loading one kind imports no other.
"""
