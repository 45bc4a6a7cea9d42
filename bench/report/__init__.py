"""What a conformance run leaves behind: the signed ``results.json``, its reproducibility
manifest and the self-contained ``report.html``.

Modules stay small and separate because a lab re-verifies and re-renders old runs without
re-running them: ``signing`` and ``html`` only ever read a ``results.json``.
"""
