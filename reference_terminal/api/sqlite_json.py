"""SQLite expressions that print values byte for byte as the API's Python does: a float as
``repr`` (what ``json.dumps`` writes), a time as ``datetime.fromtimestamp(t, zone).isoformat()``
and a string as ``json.dumps(s, ensure_ascii=False)``.

Why in SQL: text SQLite makes is made while the reader thread has let go of the GIL (the
``sqlite3`` module releases it around each step), so a long page no longer holds every other
request of the API up (CPCIF §6.2).

Why not SQLite's ``json_object``: SQLite 3.40 prints a REAL with 15 significant digits
(``1767196800.12346`` for ``1767196800.1234567``), and its ``printf`` makes digits in long
double arithmetic (``printf('%.7f', 1073741824.00390625)`` gives ``…0039060``, ``repr``
``…0039062``): neither gives Python's shortest round-trip text. Here a float's digits come
from exact 64-bit integer arithmetic instead:

- a whole number of seconds in ``[0, 2**34)`` prints as its integer and ``.0``;
- any other float in ``[2**23, 2**34)`` (from mid-April 1970 to the year 2514) is ``I + F /
  2**29`` exactly (its ULP, ``2**(e - 52)`` in the binade ``[2**e, 2**(e + 1))``, is at least
  ``2**-29`` there). ``repr`` prints the fewest decimal places ``k`` for which a ``k``-place
  decimal lies within half an ULP, and of those the nearest (ties to even). Whether one exists
  is monotone in ``k`` (``k`` places are also ``k + 1``), so ``k`` is found by bisection over
  1 … 10 (ten places always suffice), every product below ``2**63``;
- anything else :func:`fits` turns down, and the caller prints it in Python.

The microseconds of an ISO time are rounded half to even from ``frac(t) * 1e6`` in double
arithmetic, as CPython's ``_PyTime_ObjectToTimeval`` does.

Whole seconds, what periods start and end on, take the first and cheapest branch of each.
"""

from __future__ import annotations

from typing import Final

#: The fast domain: floats this module prints (see the module text).
LOW: Final = 2.0**23
HIGH: Final = 2.0**34
_BITS: Final = 29  # the fraction's unit: 2**-29
_MAX_PLACES: Final = 10


def fits(x: str) -> str:
    """A condition: the REAL column ``x`` holds a float this module prints exactly."""
    return (
        f"(typeof({x}) = 'real' AND {x} >= 0 AND {x} < {HIGH!r}"
        f" AND ({x} = CAST({x} AS INTEGER) OR {x} >= {LOW!r}))"
    )


def float_text(x: str) -> str:
    """``repr`` of the REAL column ``x``, when it :func:`fits` (garbage otherwise)."""
    whole = f"CAST({x} AS INTEGER)"
    # x - whole is exact, and so is scaling it by a power of two
    fraction = f"CAST(({x} - {whole}) * {2**_BITS}.0 AS INTEGER)"
    # x's ULP in units of 2**-29: 2**(e - 23) in the binade [2**e, 2**(e + 1)); today's
    # binade first (the whole CASE is evaluated for each bisection step)
    binades = sorted(range(23, 34), key=lambda e: (e != 30, e))
    ulp = (
        "(CASE "
        + " ".join(
            f"WHEN {x} >= {2.0**e!r} AND {x} < {2.0 ** (e + 1)!r} THEN {2 ** (e - 23)}"
            for e in binades
        )
        + " END)"
    )

    def places_work(k: int) -> str:
        # some multiple of 2**29 (a k-place decimal) within half an ULP of the fraction, both
        # scaled by 10**k: in the open interval (scaled - half, scaled + half)
        scaled, half = f"({fraction} * {10**k})", f"({ulp} * {5 * 10 ** (k - 1)})"
        return f"((({scaled} + {half} - 1) >> {_BITS}) << {_BITS}) > {scaled} - {half}"

    def text(k: int) -> str:
        scaled = f"({fraction} * {10**k})"
        low = f"({scaled} >> {_BITS})"
        rest = f"({scaled} & {2**_BITS - 1})"
        tie = 2 ** (_BITS - 1)
        nearest = f"({low} + ({rest} > {tie} OR ({rest} = {tie} AND ({low} & 1) = 1)))"
        return f"printf('%d.%0{k}d', {whole}, {nearest})"

    def fewest(lo: int, hi: int) -> str:
        if lo == hi:
            return text(lo)
        mid = (lo + hi) // 2
        return (
            f"(CASE WHEN {places_work(mid)} THEN {fewest(lo, mid)} ELSE {fewest(mid + 1, hi)} END)"
        )

    return f"(CASE WHEN {x} = {whole} THEN {whole} || '.0' ELSE {fewest(1, _MAX_PLACES)} END)"


def iso_time(x: str, offset: str, suffix: str) -> str:
    """``datetime.fromtimestamp(x, zone).isoformat()`` of the REAL column ``x``, when it
    :func:`fits`; ``offset`` is the zone's offset in seconds and ``suffix`` its ``+08:00``
    (SQL expressions: literals or bound parameters)."""
    whole = f"CAST({x} AS INTEGER)"

    def iso(seconds: str) -> str:
        return f"strftime('%Y-%m-%dT%H:%M:%S', {seconds} + {offset}, 'unixepoch')"

    micro = f"(({x} - {whole}) * 1000000.0)"
    low = f"CAST({micro} AS INTEGER)"
    rest = f"({micro} - {low})"
    # half to even, as CPython rounds a timestamp to microseconds; 1000000 carries
    us = f"({low} + ({rest} > 0.5 OR ({rest} = 0.5 AND ({low} & 1) = 1)))"
    fractional = (
        f"CASE WHEN {us} = 1000000 THEN {iso(f'({whole} + 1)')} WHEN {us} = 0 THEN {iso(whole)} "
        f"ELSE {iso(whole)} || printf('.%06d', {us}) END"
    )
    return f"((CASE WHEN {x} = {whole} THEN {iso(whole)} ELSE {fractional} END) || {suffix})"


def string(x: str) -> str:
    """``json.dumps(x, ensure_ascii=False)`` of a TEXT: SQLite's ``json_quote`` escapes the
    same characters (``"``, ``\\``, and controls as ``\\n`` … or ``\\u00XX``) and leaves every
    other character as it is."""
    return f"json_quote({x})"
