"""Toxic and proxy descriptions: Toxiproxy's defaults and JSON, refusals that name the field,
and (fuzzed) never anything but a :class:`BadRequest` for a bad description."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.network.config import (
    Address,
    ProxyConfig,
    ProxyUpdate,
    parse_address,
    parse_populate,
    parse_proxy,
    parse_proxy_update,
)
from simulators.network.errors import (
    BadRequest,
    InvalidStream,
    InvalidToxicType,
    MissingField,
)
from simulators.network.toxics import (
    Bandwidth,
    Corrupt,
    Latency,
    Slicer,
    Stream,
    Toxic,
    ToxicType,
    make_toxic,
    parse_toxic,
    parse_toxic_update,
)

# ---- toxics -----------------------------------------------------------------------------------


def test_a_toxic_defaults_as_toxiproxy_does() -> None:
    """Stream downstream, toxicity 1, name <type>_<stream>, missing attributes 0."""
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 1000}})
    assert toxic == Toxic(
        name="latency_downstream",
        type=ToxicType.LATENCY,
        stream=Stream.DOWNSTREAM,
        toxicity=1.0,
        attributes=Latency(latency=1000, jitter=0),
    )


def test_the_go_clients_empty_name_gets_the_default_name() -> None:
    """Toxiproxy's Go client always sends "name", empty when not chosen, and omits stream."""
    body = {"name": "", "type": "bandwidth", "toxicity": 1, "attributes": {"rate": 64}}
    toxic = parse_toxic(body)
    assert (toxic.name, toxic.stream, toxic.attributes) == (
        "bandwidth_downstream",
        Stream.DOWNSTREAM,
        Bandwidth(rate=64),
    )


def test_toxic_json_has_toxiproxys_shape_and_reads_back_equal() -> None:
    toxic = make_toxic(
        "slicer", stream="upstream", toxicity=0.5, average_size=64, size_variation=8, delay=10
    )
    assert toxic.to_json() == {
        "attributes": {"average_size": 64, "size_variation": 8, "delay": 10},
        "name": "slicer_upstream",
        "type": "slicer",
        "stream": "upstream",
        "toxicity": 0.5,
    }
    assert parse_toxic(toxic.to_json()) == toxic


def test_every_toxiproxy_toxic_type_is_known() -> None:
    expected = {
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "noop",
    }
    assert expected <= {t.value for t in ToxicType}
    assert ToxicType("corrupt") is ToxicType.CORRUPT


def lag(**attributes: object) -> dict[str, object]:
    return {"type": "latency", "attributes": attributes}


BAD_TOXICS: list[tuple[object, type[BadRequest], str, str]] = [
    ({"type": "latency", "stream": "sideways"}, InvalidStream, "stream", "sideways"),
    ({"type": "latencyy"}, InvalidToxicType, "type", "latencyy"),
    ({"stream": "upstream"}, InvalidToxicType, "type", "None"),
    (lag(latency="1000"), BadRequest, "attributes.latency", "string"),
    (lag(latency=1.5), BadRequest, "attributes.latency", "1.5"),
    (lag(latency=-1), BadRequest, "attributes.latency", "negative"),
    (lag(latency=True), BadRequest, "attributes.latency", "true"),
    (lag(latancy=5), BadRequest, "attributes.latancy", "latency, jitter"),
    ({"type": "latency", "attributes": [1]}, BadRequest, "attributes", "array"),
    ({"type": "bandwidth", "attributes": {"rate": 2**63}}, BadRequest, "attributes.rate", "most"),
    ({"type": "latency", "toxicity": 1.5}, BadRequest, "toxicity", "0 to 1"),
    ({"type": "latency", "toxicity": "1"}, BadRequest, "toxicity", "string"),
    ({"type": "latency", "name": 7}, BadRequest, "name", "number"),
    ({"type": "latency", "name": "a/b"}, BadRequest, "name", "'/'"),
    ({"type": "latency", "name": ".."}, BadRequest, "name", "URL path"),
    (
        {"type": "corrupt", "attributes": {"probability": 2}},
        BadRequest,
        "attributes.probability",
        "0 to 1",
    ),
    (
        {"type": "slicer", "attributes": {"size_variation": 1}},
        BadRequest,
        "attributes.average_size",
        "at least 1",
    ),
    (
        {"type": "slicer", "attributes": {"average_size": 4, "size_variation": 4}},
        BadRequest,
        "attributes.size_variation",
        "smaller",
    ),
]


@pytest.mark.parametrize(("body", "error", "field", "words"), BAD_TOXICS)
def test_a_bad_toxic_is_refused_naming_the_field(
    body: object, error: type[BadRequest], field: str, words: str
) -> None:
    with pytest.raises(error) as caught:
        parse_toxic(body)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert caught.value.status == 400


def test_toxiproxys_fixed_error_texts_are_kept_for_the_api() -> None:
    with pytest.raises(InvalidStream) as stream:
        parse_toxic({"type": "latency", "stream": "x"})
    assert stream.value.api_message == "stream was invalid, can be either upstream or downstream"
    with pytest.raises(InvalidToxicType) as kind:
        parse_toxic({"type": "x"})
    assert kind.value.api_message == "invalid toxic type"
    with pytest.raises(BadRequest) as bad:
        parse_toxic({"type": "latency", "attributes": {"jitter": -5}})
    assert (
        bad.value.api_message == "bad request body: attributes.jitter: must not be negative, got -5"
    )


def test_an_update_changes_only_what_it_names() -> None:
    """Toxiproxy decodes an update over the toxic as it is: other attributes stay."""
    toxic = make_toxic("latency", latency=100, jitter=10, toxicity=0.5)
    updated = parse_toxic_update(toxic, {"attributes": {"latency": 2000}})
    assert updated.attributes == Latency(latency=2000, jitter=10)
    assert updated.toxicity == 0.5
    assert parse_toxic_update(toxic, {"toxicity": 1}).toxicity == 1.0
    renamed = parse_toxic_update(toxic, {"name": "other", "stream": "upstream", "type": "timeout"})
    assert renamed == toxic


def test_integral_numbers_written_as_floats_are_accepted() -> None:
    """Some clients send 1000.0 for 1000; a whole number is a whole number."""
    assert make_toxic("latency", latency=1000.0).attributes == Latency(latency=1000)


def test_corrupt_takes_a_probability() -> None:
    assert make_toxic("corrupt", probability=0.25).attributes == Corrupt(probability=0.25)
    assert make_toxic("slicer", average_size=1).attributes == Slicer(average_size=1)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TOXIC_KEYS = st.sampled_from(["name", "type", "stream", "toxicity", "attributes", "x"])
ATTRIBUTE_KEYS = st.sampled_from(
    ["latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes",
     "probability", "enabled"]
)  # fmt: skip
NUMBERS = st.integers(min_value=-5, max_value=2**64) | st.floats() | st.booleans() | st.none()
TOXIC_BODIES = (
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=10) | JSON,
            "type": st.sampled_from([t.value for t in ToxicType]) | JSON,
            "stream": st.sampled_from(["upstream", "downstream", "UPSTREAM", ""]) | JSON,
            "toxicity": NUMBERS,
            "attributes": st.dictionaries(ATTRIBUTE_KEYS, NUMBERS, max_size=4) | JSON,
        },
    )
    | st.dictionaries(TOXIC_KEYS, JSON, max_size=5)
    | JSON
)


@settings(max_examples=400, deadline=None)
@given(TOXIC_BODIES)
def test_any_toxic_json_is_either_a_valid_toxic_or_a_bad_request(body: object) -> None:
    """Fuzzed: no other exception escapes, and what is accepted is in range and reads back."""
    try:
        toxic = parse_toxic(body)
    except BadRequest as error:
        assert error.status == 400
        assert error.api_message
        return
    assert 0 <= toxic.toxicity <= 1
    assert all(v >= 0 for v in toxic.to_json()["attributes"].values())
    assert parse_toxic(toxic.to_json()) == toxic


@settings(max_examples=200, deadline=None)
@given(TOXIC_BODIES, JSON)
def test_any_toxic_update_json_is_either_applied_or_a_bad_request(
    body: object, update: object
) -> None:
    try:
        toxic = parse_toxic(body)
    except BadRequest:
        return
    try:
        updated = parse_toxic_update(toxic, update)
    except BadRequest as error:
        assert error.status == 400
        return
    assert (updated.name, updated.type, updated.stream) == (toxic.name, toxic.type, toxic.stream)


# ---- proxies ----------------------------------------------------------------------------------


def test_a_proxy_defaults_to_enabled_on_loopback() -> None:
    assert parse_proxy({"name": "db", "upstream": "127.0.0.1:5432"}) == ProxyConfig(
        name="db", upstream="127.0.0.1:5432", listen="127.0.0.1:0", enabled=True
    )


def test_the_go_clients_proxy_json_is_accepted() -> None:
    """The Go client's Save() posts the whole proxy, ``toxics`` included (ignored)."""
    body = {
        "name": "redis",
        "listen": "localhost:26379",
        "upstream": "localhost:6379",
        "enabled": False,
        "toxics": None,
    }
    assert parse_proxy(body) == ProxyConfig("redis", "localhost:6379", "localhost:26379", False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "", "upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "a"}, "missing required field: upstream"),
    ],
)
def test_a_proxy_without_name_or_upstream_is_refused_as_toxiproxy_does(
    body: dict[str, Any], message: str
) -> None:
    with pytest.raises(MissingField) as caught:
        parse_proxy(body)
    assert caught.value.api_message == message


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "a", "upstream": "nowhere"}, "upstream", "no port"),
        ({"name": "a", "upstream": "h:0"}, "upstream", "port must be 1…65535"),
        ({"name": "a", "upstream": "h:99999"}, "upstream", "99999"),
        ({"name": "a", "upstream": "::1:80"}, "upstream", "brackets"),
        ({"name": "a", "upstream": 80}, "upstream", "string"),
        ({"name": "a", "upstream": "h:1", "listen": "h:x"}, "listen", "'x'"),
        ({"name": "a", "upstream": "h:1", "enabled": "yes"}, "enabled", "true or false"),
        ({"name": ["a"], "upstream": "h:1"}, "name", "array"),
    ],
)
def test_a_bad_proxy_is_refused_naming_the_field(
    body: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_proxy(body)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_addresses_read_as_toxiproxy_writes_them() -> None:
    assert parse_address("listen", "[::1]:8474", port_zero=True) == Address("::1", 8474)
    assert str(Address("::1", 8474)) == "[::1]:8474"
    assert parse_address("listen", ":0", port_zero=True) == Address("", 0)
    assert str(parse_address("upstream", "db.local:5432", port_zero=False)) == "db.local:5432"


def test_populate_names_the_proxy_at_fault_and_refuses_duplicates() -> None:
    with pytest.raises(MissingField) as missing:
        parse_populate([{"name": "a", "upstream": "h:1"}, {"name": "b"}])
    assert missing.value.api_message == "missing required field: upstream at proxy 2"
    with pytest.raises(BadRequest) as twice:
        parse_populate([{"name": "a", "upstream": "h:1"}, {"name": "a", "upstream": "h:2"}])
    assert twice.value.field == "name at proxy 2"
    with pytest.raises(BadRequest) as wrong:
        parse_populate([{"name": "a", "upstream": "h:1", "listen": 5}])
    assert wrong.value.field == "listen at proxy 1"


def test_a_proxy_update_keeps_what_it_does_not_name() -> None:
    current = ProxyUpdate(listen="127.0.0.1:1000", upstream="127.0.0.1:2000", enabled=True)
    assert parse_proxy_update(current, {"enabled": False}) == ProxyUpdate(
        "127.0.0.1:1000", "127.0.0.1:2000", False
    )
    with pytest.raises(BadRequest) as caught:
        parse_proxy_update(current, {"upstream": "x"})
    assert caught.value.field == "upstream"


PROXY_BODIES = (
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=6) | JSON,
            "listen": st.sampled_from(["127.0.0.1:0", ":0", "[::1]:0", "h:70000", ""]) | JSON,
            "upstream": st.sampled_from(["127.0.0.1:9", "h:0", "x", "[::1]:9"]) | JSON,
            "enabled": st.booleans() | JSON,
        },
    )
    | JSON
)


@settings(max_examples=300, deadline=None)
@given(PROXY_BODIES)
def test_any_proxy_json_is_either_a_valid_proxy_or_a_bad_request(body: object) -> None:
    try:
        config = parse_proxy(body)
    except BadRequest as error:
        assert error.status == 400
        return
    assert config.name and "/" not in config.name
    assert parse_address("upstream", config.upstream, port_zero=False).port > 0


@settings(max_examples=150, deadline=None)
@given(st.lists(PROXY_BODIES, max_size=4) | JSON)
def test_any_populate_json_is_either_valid_proxies_or_a_bad_request(body: object) -> None:
    try:
        configs = parse_populate(body)
    except BadRequest:
        return
    assert len({c.name for c in configs}) == len(configs)
