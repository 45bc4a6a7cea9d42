"""How accounting figures are stored: the notes written on the booking path are the notes
:func:`note` writes, whatever the decimals look like."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reference_terminal.accounting.records import minute_note, note, period_note, stored

D = Decimal
REGISTERS = [D("1000.00"), D("0"), D("-0.00"), D("1E+3"), D("1E-7"), D("123456.789"), None]


@pytest.mark.parametrize("activity", [D("5.23"), D("0"), D("1E+2"), D("0.0000001"), D("-3.5")])
@pytest.mark.parametrize("first", REGISTERS)
@pytest.mark.parametrize("last", REGISTERS)
def test_the_minute_and_period_notes_are_the_note(
    activity: Decimal, first: Decimal | None, last: Decimal | None
) -> None:
    factor = D("0.0005703")
    assert minute_note(activity, f"{factor:f}", first, last) == note(
        a=activity, f=factor, first=first, last=last
    )
    assert period_note(activity, 60, first, last) == note(a=activity, n=60, first=first, last=last)


def test_a_stored_figure_is_rounded_half_up_to_ten_places_without_negative_zero() -> None:
    assert stored(D("0.00000000005")) == D("0.0000000001")
    assert stored(D("-0.00000000005")) == D("-0.0000000001")
    assert str(stored(D("-0.00000000004"))) == "0E-10"
    assert str(stored(D("0.0057030000"))) == "0.0057030000"
