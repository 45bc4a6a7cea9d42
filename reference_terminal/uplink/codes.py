"""Data item codes (CSMT §7.2): what a value *is*, as the platform files it.

CSMT §7.2 (after DB35/T 2000-2021 §8.4, §9) asks that a data item code carry the industry, the
emission activity, the emission source, the parameter and the point number. The regional text is
not public, so the layout here is this terminal's, fixed-width so that a platform can take a code
apart again::

    C3011  01   001   e01   02        ->  "C301101001e0102"
    |      |    |     |     point number (2 digits, 01-99)
    |      |    |     parameter (3 letters/digits: e01 electricity, a05001-style codes go in
    |      |    |     ``hj212`` instead)
    |      |    emission source number within the activity (3 digits)
    |      emission activity (2 digits: 01 combustion, 02 process, 03 purchased electricity …)
    industry (GB/T 4754 class: one letter and 4 digits)

A plain HJ 212 pollutant code (``a05001`` CO2, ``a19001`` O2 …) is accepted as well, for
platforms that file by the national table.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_STRUCTURED = re.compile(
    r"(?P<industry>[A-T][0-9]{4})(?P<activity>[0-9]{2})(?P<source>[0-9]{3})"
    r"(?P<parameter>[A-Za-z0-9]{3})(?P<point>[0-9]{2})"
)
#: HJ 212-2017 附录 B pollutant codes: a letter and five digits (a05001, w01018 …).
HJ212_CODE = re.compile(r"[a-z][0-9]{5}")


class ItemCodeError(ValueError):
    """A data item code that does not follow the layout of CSMT §7.2 as this terminal uses it."""


class ItemCode(BaseModel):
    """A structured data item code (CSMT §7.2); ``str(code)`` is the HJ 212 factor code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    industry: Annotated[str, Field(pattern=r"^[A-T][0-9]{4}$")]
    activity: Annotated[str, Field(pattern=r"^[0-9]{2}$")]
    source: Annotated[str, Field(pattern=r"^[0-9]{3}$")]
    parameter: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{3}$")]
    point: int = Field(ge=1, le=99)

    def render(self) -> str:
        return f"{self.industry}{self.activity}{self.source}{self.parameter}{self.point:02d}"

    def __str__(self) -> str:
        return self.render()

    @classmethod
    def parse(cls, text: str) -> ItemCode:
        """The structured code a rendered one came from."""
        match = _STRUCTURED.fullmatch(text)
        if match is None:
            raise ItemCodeError(
                f"data item code {text!r}: CSMT §7.2 codes here are industry (letter + 4 digits), "
                "activity (2 digits), source (3 digits), parameter (3 characters) and point "
                "number (2 digits), e.g. C301101001e0102"
            )
        parts = match.groupdict()
        return cls(
            industry=parts["industry"],
            activity=parts["activity"],
            source=parts["source"],
            parameter=parts["parameter"],
            point=int(parts["point"]),
        )


def render_code(code: ItemCode | str) -> str:
    """The factor code as it goes on the wire: a structured code rendered, or an HJ 212 code."""
    if isinstance(code, ItemCode):
        return code.render()
    if not HJ212_CODE.fullmatch(code):
        raise ItemCodeError(
            f"factor code {code!r} is neither a structured CSMT §7.2 item code nor an HJ 212 "
            "pollutant code (a letter and five digits, 附录 B)"
        )
    return code
