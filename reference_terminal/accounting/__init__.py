"""Carbon accounting: units, the factor library, the emission-factor method and scopes.

- :mod:`.units`: quantities as exact decimals with units ("12 10^4 Nm3"), conversions.
- :mod:`.factors`: the versioned methodology and factor library (import/query/update/export).
- :mod:`.methods`: one source → its emission, keeping activity data, parameters and origins.
- :mod:`.inventory`: many sources → scope 1, scope 2, total and biomass, from one vintage.
- :mod:`.statistics`: per-minute activity → hourly … yearly totals by source and scope,
  intensities per electricity, heat and product, YoY and MoM, exactly.
- :mod:`.live`: per-minute accounting as data arrives (emission, cumulative, closed periods).
- :mod:`.alarms`: thresholds, anomalies and data gaps on emissions and intensities.
- :mod:`.report`: the GB/T 32150 inventory report (plant file, meter data, HTML, PDF, JSON).
- :mod:`.errors`: every failure as an exception naming the source and the field.

Inside the running terminal (the configuration's ``accounting:`` section):

- :mod:`.configuration`: the section as validated data (enterprise, units, sources, bases, alarms).
- :mod:`.bindings`: the section resolved against the points and the library (rates, scopes).
- :mod:`.running`: each closed minute (and each hand entry) booked as it comes; restarts.
- :mod:`.records`: how the figures are stored (derived values) and read back.
- :mod:`.queries`: a period's figures for the API (by scope, category, source, point; YoY, MoM).
- :mod:`.stored_report`: the inventory report from what the terminal stored.
"""
