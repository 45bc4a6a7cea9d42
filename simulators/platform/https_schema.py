"""The JSON body an HTTPS centre accepts (ISC-2 §7.2.3(6)): one upload, HJ 212 semantics.

The terminal's HTTPS uploader mirrors this model (the terminal may not import the bench); the
two must agree field for field. One POST carries what one HJ 212 data frame would::

    POST https://127.0.0.1:PORT/hj212/upload        Content-Type: application/json
    {
      "QN": "20260101120000123",          17 digits, YYYYMMDDhhmmsszzz; a resend keeps its QN
      "MN": "010000A8900016F000169DC0",   the terminal's identifier (as in HJ 212)
      "PW": "123456",                     the centre's password for this MN
      "ST": "32",                         system code (表 5), default "32"
      "CN": 2051,                         2011 real-time, 2051 minute, 2061 hourly, 2031 daily …
      "DataTime": "20260101115900",       YYYYMMDDhhmmss, local time, the interval's start
      "values": [
        {"code": "a05001", "value": "412.50", "flag": "N",
         "min": "400.1", "max": "420.0", "cou": "12.375"},
        …
      ]
    }

* ``value`` is the reading (HJ 212's ``Rtd`` for CN 2011, ``Avg`` otherwise); ``min``, ``max``
  and ``cou`` are optional. Numbers are best sent as JSON strings of decimal digits (exact,
  the meter's digits kept); JSON numbers are accepted too. No exponents, NaN or infinities.
* ``flag`` is a data flag of 表 8 (N, F, M, S, D, C, T, B), default ``N``.
* ``code`` is a factor code (``a05001``; CSMT §7.2 long codes allowed: letters, digits, ``.``
  ``_`` ``-``, up to 64), each code at most once per upload.

Answers: ``200 {"ok": true, "QN": …, "values": n}`` is the acknowledgement (HJ 212's 9014): the
terminal may drop the upload from its outbox only then. ``422 {"ok": false, "error": …}``: the
body does not validate (the error names the field; resending the same body will not help);
``403``: MN/PW refused; ``5xx`` or no answer: not acknowledged, try again later with the
same QN.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

from protocols.hj212.cp import Pollutant, is_time

_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
FLAGS: Final = frozenset("NFMSDCTB")


def _exact(value: object) -> object:
    # Strings must be plain decimals (HJ 212 表 4 N14.2 style): no '1e3', 'NaN', '_' or spaces.
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain decimal number")
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that round-trips, not binary noise
    return value


ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact),
    Field(allow_inf_nan=False),
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
]


class UploadValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    value: ExactDecimal
    flag: str = "N"
    min: ExactDecimal | None = None
    max: ExactDecimal | None = None
    cou: ExactDecimal | None = None

    @field_validator("flag")
    @classmethod
    def _flag(cls, value: str) -> str:
        if value not in FLAGS:
            raise ValueError(f"flag {value!r} is not a data flag of HJ 212-2017 表 8 (NFMSDCTB)")
        return value


class UploadBody(BaseModel):
    """One upload to an HTTPS centre (see the module's text for the wire form)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    qn: str = Field(alias="QN", pattern=r"^[0-9]{17}$")
    mn: str = Field(alias="MN", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    pw: str = Field("", alias="PW", max_length=64)
    st: str = Field("32", alias="ST", pattern=r"^[0-9]{2}$")
    cn: int = Field(alias="CN", ge=1000, le=9999)
    data_time: str = Field(alias="DataTime", pattern=r"^[0-9]{14}$")
    values: list[UploadValue] = Field(min_length=1, max_length=1000)

    @field_validator("data_time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not is_time(value):
            raise ValueError(f"DataTime {value!r} is not a valid YYYYMMDDhhmmss time")
        return value

    @field_validator("qn")
    @classmethod
    def _qn(cls, value: str) -> str:
        if not is_time(value):
            raise ValueError(f"QN {value!r} is not a valid YYYYMMDDhhmmsszzz time (表 3)")
        return value

    @field_validator("values")
    @classmethod
    def _unique(cls, values: list[UploadValue]) -> list[UploadValue]:
        codes = [v.code for v in values]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"each code once per upload: {', '.join(twice)} repeated")
        return values

    def pollutants(self) -> list[Pollutant]:
        """The values as HJ 212 factor fields, recorded exactly as an HJ 212 upload's are."""
        main = "Rtd" if self.cn == 2011 else "Avg"
        out = []
        for item in self.values:
            fields = {main: item.value}
            for name, extra in (("Min", item.min), ("Max", item.max), ("Cou", item.cou)):
                if extra is not None:
                    fields[name] = extra
            out.append(Pollutant(item.code, fields, item.flag))
        return out
