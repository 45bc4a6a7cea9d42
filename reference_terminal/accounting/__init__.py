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
"""
