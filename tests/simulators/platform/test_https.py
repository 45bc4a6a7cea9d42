"""The HTTPS centre, reached by httpx verifying the generated CA: uploads, answers, behaviours,
and the body schema under hypothesis."""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from common.clock import RealClock
from simulators.platform import HttpsCentre, HttpsServer, Record
from simulators.platform.https_schema import UploadBody
from tests.simulators.platform.device import MN, PW

pytestmark = pytest.mark.anyio


def body(qn: str = "20260101120000001", **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "QN": qn,
        "MN": MN,
        "PW": PW,
        "CN": 2051,
        "DataTime": "20260101115900",
        "values": [
            {"code": "a05001", "value": "412.50", "flag": "N", "min": "400.1", "max": "420"},
            {"code": "a19001", "value": 20.9},
        ],
    }
    return document | changes


@pytest.fixture
async def https(record: Record) -> AsyncIterator[HttpsServer]:
    config = HttpsCentre(name="web", passwords={MN: PW})
    async with HttpsServer(config, record, RealClock()) as server:
        yield server


def client(server: HttpsServer, timeout: float = 5.0) -> httpx.AsyncClient:
    verify = ssl.create_default_context(cafile=str(server.ca_file))
    return httpx.AsyncClient(verify=verify, timeout=timeout)


async def test_an_upload_is_acknowledged_and_recorded_like_an_hj212_one(
    https: HttpsServer, record: Record
) -> None:
    async with client(https) as http:
        answer = await http.post(https.url, json=body())
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "QN": "20260101120000001", "values": 2}
    frames = record.frames(centre="web")
    assert [(f.transport, f.direction, f.cn, f.qn) for f in frames] == [
        ("https", "in", 2051, "20260101120000001"),
        ("https", "out", 2051, "20260101120000001"),
    ]
    assert json.loads(frames[0].raw) == body() and frames[1].raw.startswith("HTTP 200 ")
    readings = record.readings(centre="web")
    assert [(r.code, r.value, r.fields) for r in readings] == [
        ("a05001", Decimal("412.50"), {"Avg": "412.50", "Min": "400.1", "Max": "420", "Flag": "N"}),
        ("a19001", Decimal("20.9"), {"Avg": "20.9", "Flag": "N"}),
    ]


async def test_an_invalid_body_gets_422_naming_the_field(
    https: HttpsServer, record: Record
) -> None:
    async with client(https) as http:
        answer = await http.post(https.url, json=body(DataTime="2026-01-01"))
        garbage = await http.post(https.url, content=b"{not json")
    assert answer.status_code == 422 and "DataTime" in answer.json()["error"]
    assert garbage.status_code == 422
    bad = record.frames(direction="in", ok=False)
    assert len(bad) == 2 and bad[0].error_reason == "body"
    assert record.readings() == []


async def test_a_wrong_password_gets_403(https: HttpsServer) -> None:
    async with client(https) as http:
        answer = await http.post(https.url, json=body(PW="nope"))
    assert answer.status_code == 403 and "does not match" in answer.json()["error"]


async def test_server_error_late_and_never(https: HttpsServer, record: Record) -> None:
    async with client(https, timeout=0.5) as http:
        await https.set_behaviour({"kind": "server_error", "status": 502})
        assert (await http.post(https.url, json=body())).status_code == 502
        await https.set_behaviour({"kind": "ack_late", "delay_s": 0.2})
        late = await http.post(https.url, json=body("20260101120000002"))
        assert late.status_code == 200 and late.elapsed.total_seconds() >= 0.2
        await https.set_behaviour("never_ack")
        with pytest.raises(httpx.ReadTimeout):
            await http.post(https.url, json=body("20260101120000003"))
    notes = [f.note for f in record.frames(direction="in")]
    assert notes == [
        "HTTP 502 (server_error)",
        "ack in 0.2 s (ack_late)",
        "not answered (never_ack)",
    ]
    # every upload's values are recorded, answered or not: the record is what arrived
    assert len(record.deduplicated(centre="web")) == 2


async def test_drop_and_refuse(https: HttpsServer) -> None:
    async with client(https) as http:
        await https.set_behaviour("drop")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(https.url, json=body())
        await https.set_behaviour("refuse")
        with pytest.raises(httpx.ConnectError):
            await http.post(https.url, json=body())
        await https.set_behaviour("ack")
        assert (await http.post(https.url, json=body())).status_code == 200
    with pytest.raises(ValueError, match="bad_crc"):
        await https.set_behaviour("bad_crc")


async def test_the_certificate_is_refused_without_the_ca(https: HttpsServer) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.post(https.url, json=body())


# ---- the body schema ---------------------------------------------------------------------------

decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=3, min_value=-1e9, max_value=1e9
)
codes = st.from_regex(r"[a-z][0-9]{5}", fullmatch=True)
values = st.lists(
    st.fixed_dictionaries(
        {"code": codes, "value": decimals.map(lambda d: format(d, "f"))},
        optional={
            "flag": st.sampled_from("NFMSDCTB"),
            "cou": decimals.map(lambda d: format(d, "f")),
        },
    ),
    min_size=1,
    max_size=10,
    unique_by=lambda v: v["code"],
)


@given(values)
def test_any_valid_body_parses_to_exact_decimals_and_serialises_back(
    items: list[dict[str, str]],
) -> None:
    document = body(values=items)
    parsed = UploadBody.model_validate_json(json.dumps(document))
    for item, value in zip(items, parsed.values, strict=True):
        assert value.value == Decimal(item["value"]) and value.flag == item.get("flag", "N")
        assert format(value.value, "f") == item["value"]  # the digits as sent
    again = UploadBody.model_validate_json(parsed.model_dump_json(by_alias=True))
    assert again == parsed
    main = "Avg"
    assert [p.values[main] for p in parsed.pollutants()] == [v.value for v in parsed.values]


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_garbage_bodies_raise_only_validation_errors(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        UploadBody.model_validate_json(raw)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"QN": "2026"}, "QN"),
        ({"DataTime": "20261301000000"}, "not a valid"),
        ({"values": []}, "values"),
        ({"values": [{"code": "a1", "value": "1e3"}]}, "plain decimal"),
        ({"values": [{"code": "a1", "value": "NaN"}]}, "plain decimal"),
        ({"values": [{"code": "a1", "value": True}]}, "boolean"),
        ({"values": [{"code": "a1", "value": "1", "flag": "X"}]}, "表 8"),
        ({"values": [{"code": "a1", "value": "1"}, {"code": "a1", "value": "2"}]}, "repeated"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_bodies_say_what_is_wrong(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        UploadBody.model_validate(body() | change)
