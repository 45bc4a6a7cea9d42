"""hypothesis strategies for typed HJ 212 values, and what a CP says (to compare two)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hypothesis import strategies as st

from protocols import hj212
from protocols.hj212.codes import Command

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda m: m.replace(microsecond=m.microsecond // 1000 * 1000)
)
seconds = moments.map(lambda m: m.replace(microsecond=0))
codes = st.from_regex(r"[a-z][0-9]{5}|[a-z][0-9][a-z0-9][0-9]{3}", fullmatch=True)
numbers = st.decimals(
    min_value=Decimal("-99999999"), max_value=Decimal("99999999"), places=3, allow_nan=False
)
flags = st.sampled_from([f.value for f in hj212.DataFlag])
text = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789中文",
    min_size=1,
    max_size=12,
)


@st.composite
def pollutants(draw: st.DrawFn) -> hj212.Pollutant:
    fields = draw(
        st.lists(
            st.sampled_from(["Rtd", "Avg", "Min", "Max", "Cou", "ZsAvg"]),
            unique=True,
            min_size=1,
            max_size=4,
        )
    )
    return hj212.Pollutant(
        code=draw(codes),
        values={name: draw(numbers) for name in fields},
        flag=draw(st.none() | flags),
        sample_time=draw(st.none() | seconds),
    )


@st.composite
def cps(draw: st.DrawFn) -> hj212.Cp:
    found = draw(st.lists(pollutants(), max_size=6, unique_by=lambda p: p.code))
    return hj212.Cp.build(data_time=draw(st.none() | seconds), pollutants=found)


@st.composite
def packets(draw: st.DrawFn) -> hj212.Packet:
    edition = draw(st.sampled_from([hj212.HJ212_2017, hj212.HJ212_2025, hj212.HJ212_2005]))
    split = draw(st.booleans())
    pnum = draw(st.integers(1, 9999)) if split else None
    return hj212.Packet(
        cn=int(draw(st.sampled_from([c for c in Command if c != Command.HEARTBEAT]))),
        st=draw(st.from_regex(r"[0-9A-Z]{2}", fullmatch=True)),
        mn=draw(st.from_regex(r"[0-9A-F]{24}|[0-9A-Za-z_]{1,24}", fullmatch=True)),
        pw=draw(st.from_regex(r"[0-9A-Za-z]{0,12}", fullmatch=True)),
        cp=draw(cps()),
        qn=draw(st.none() | moments.map(hj212.make_qn)),
        flag=hj212.Flag(edition.version, split, draw(st.booleans())),
        pnum=pnum,
        pno=None if pnum is None else draw(st.integers(1, pnum)),
        edition=edition,
    )


def said(cp: hj212.Cp) -> tuple[object, ...]:
    """Everything a CP says: its text and its typed view (``Cp ==`` compares the text alone)."""
    return cp.text, dict(cp.params), dict(cp.pollutants), cp.notes
