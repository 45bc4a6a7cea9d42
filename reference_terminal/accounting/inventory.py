"""Classified accounting (CSMT §9.4): many sources, one vintage, totals by scope.

Scope 1 is combustion, process, carbonates and recovered CO2 (negative); scope 2 is purchased
electricity and heat less exported electricity and heat; the total is scope 1 + scope 2
(GB/T 32150: E = combustion + process − recovered + purchased electricity + purchased heat −
exported electricity − exported heat). Biomass CO2 is summed apart and is in neither.

Totals are sums of the unrounded source figures; rounding happens once, when reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from reference_terminal.accounting.errors import VintageMix
from reference_terminal.accounting.factors import Factor, FactorLibrary
from reference_terminal.accounting.methods import SourceResult, SourceSpec, account_source
from reference_terminal.accounting.units import CONTEXT, dsum


@dataclass(frozen=True, slots=True)
class Inventory:
    results: tuple[SourceResult, ...]
    vintage: str | None  # the one vintage the library factors came from; None: none used
    scope1_tco2: Decimal
    scope2_tco2: Decimal
    biomass_tco2: Decimal

    @property
    def total_tco2(self) -> Decimal:
        return CONTEXT.add(self.scope1_tco2, self.scope2_tco2)

    def factors_to_confirm(self) -> list[Factor]:
        """Library entries used whose values still await the primary table (FACTS.md)."""
        seen: dict[tuple[str, str, int | None], Factor] = {}
        for r in self.results:
            for p in r.parameters:
                if p.factor is not None and p.factor.to_confirm:
                    seen.setdefault(p.factor.key, p.factor)
        return list(seen.values())


def account(
    specs: Iterable[SourceSpec],
    library: FactorLibrary | None = None,
    vintage: str | None = None,
) -> Inventory:
    """Account every source; :class:`VintageMix` if library factors come from two vintages.

    ``vintage`` restricts every library lookup to that vintage. Without it, the first source
    that uses the library fixes the vintage for the rest, and a later one from another vintage
    is refused with both sources named.
    """
    results: list[SourceResult] = []
    chosen, chosen_by = vintage, "the calculation's vintage"
    for spec in specs:
        if spec.vintage is not None and chosen is not None and spec.vintage != chosen:
            raise VintageMix(
                f"source {spec.name!r}: vintage: {spec.vintage!r}, but {chosen_by} is "
                f"{chosen!r}; one calculation takes factors from one vintage only"
            )
        result = account_source(spec, library, vintage)
        if result.vintage is not None:
            if chosen is None:
                chosen, chosen_by = result.vintage, f"source {spec.name!r}'s vintage"
            elif result.vintage != chosen:
                raise VintageMix(
                    f"source {spec.name!r}: {spec.library_field}: {spec.library_name!r} comes "
                    f"from {result.vintage!r}, but {chosen_by} is {chosen!r}; one calculation "
                    "takes factors from one vintage only (give explicit parameters instead)"
                )
        results.append(result)
    scope1 = dsum(r.tco2 for r in results if r.scope == 1)
    scope2 = dsum(r.tco2 for r in results if r.scope == 2)
    biomass = dsum(r.tco2 for r in results if r.scope is None)
    return Inventory(tuple(results), chosen, scope1, scope2, biomass)
