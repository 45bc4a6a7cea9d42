"""Carbon accounting: units, the factor library, the emission-factor method and scopes.

- :mod:`.units`: quantities as exact decimals with units ("12 10^4 Nm3"), conversions.
- :mod:`.factors`: the versioned methodology and factor library (import/query/update/export).
- :mod:`.methods`: one source → its emission, keeping activity data, parameters and origins.
- :mod:`.inventory`: many sources → scope 1, scope 2, total and biomass, from one vintage.
- :mod:`.errors`: every failure as an exception naming the source and the field.
"""
