"""The inventory report: :mod:`.plant` (the plant file and the meters' per-minute data),
:mod:`.build` (the report as data, GB/T 32150 structure), :mod:`.html` and :mod:`.pdf`."""
