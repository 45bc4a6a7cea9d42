"""Remote configuration by named fields, and what changed between two configurations."""

from __future__ import annotations

from typing import Any

import pytest

from reference_terminal.operations.remote_config import (
    Operation,
    PatchError,
    apply_operations,
    changed_fields,
)

DOCUMENT: dict[str, Any] = {
    "groups": [{"id": "serial", "period_s": 60}, {"id": "network", "period_s": 60}],
    "points": [{"id": "p.1", "min": None}, {"id": "p/2", "min": "0"}],
    "uplink": {
        "centres": [
            {"name": "provincial", "host": "10.0.0.1", "port": 20001, "pw": "123456"},
            {"name": "group", "host": "10.0.0.2", "port": 20002, "pw": "654321"},
        ],
        "codes": [{"point": "p.1", "code": "a05001"}],
    },
}


def ops(*changes: dict[str, Any]) -> list[Operation]:
    return [Operation.model_validate(c) for c in changes]


def test_list_elements_are_named_by_id_name_or_point() -> None:
    out = apply_operations(
        DOCUMENT,
        ops(
            {"op": "replace", "path": "/uplink/centres/group/port", "value": 30000},
            {"op": "replace", "path": "/groups/network/period_s", "value": 30},
            {"op": "replace", "path": "/points/p~12/min", "value": "5"},  # "p/2", escaped
            {"op": "replace", "path": "/uplink/codes/p.1/code", "value": "a05002"},
            {"op": "replace", "path": "/groups/0/period_s", "value": 120},  # by position
        ),
    )
    assert out["uplink"]["centres"][1]["port"] == 30000
    assert out["groups"] == [{"id": "serial", "period_s": 120}, {"id": "network", "period_s": 30}]
    assert out["points"][1]["min"] == "5"
    assert out["uplink"]["codes"][0]["code"] == "a05002"
    assert DOCUMENT["groups"][1]["period_s"] == 60, "the argument is left alone"


def test_add_and_remove() -> None:
    out = apply_operations(
        DOCUMENT,
        ops(
            {"op": "add", "path": "/groups/-", "value": {"id": "push", "period_s": 60}},
            {"op": "remove", "path": "/uplink/centres/provincial"},
            {"op": "add", "path": "/points/p.1/max", "value": "100"},
            {"op": "remove", "path": "/points/p~12/min"},
        ),
    )
    assert [g["id"] for g in out["groups"]] == ["serial", "network", "push"]
    assert [c["name"] for c in out["uplink"]["centres"]] == ["group"]
    assert out["points"] == [{"id": "p.1", "min": None, "max": "100"}, {"id": "p/2"}]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"op": "replace", "path": "/uplink/centres/national/port", "value": 1}, "national"),
        ({"op": "replace", "path": "/uplink/nothing", "value": 1}, "use add"),
        ({"op": "remove", "path": "/storage"}, "no such field"),
        ({"op": "replace", "path": "/groups/serial/period_s/x", "value": 1}, "has no fields"),
    ],
)
def test_a_change_that_does_not_fit_names_its_path(change: dict[str, Any], words: str) -> None:
    with pytest.raises(PatchError, match=words):
        apply_operations(DOCUMENT, ops(change))


def test_changed_fields_by_path_with_secrets_hidden() -> None:
    new = apply_operations(
        DOCUMENT,
        ops(
            {"op": "replace", "path": "/uplink/centres/provincial/port", "value": 20009},
            {"op": "replace", "path": "/uplink/centres/group/pw", "value": "999999"},
            {"op": "remove", "path": "/groups/network"},
            {"op": "add", "path": "/groups/-", "value": {"id": "push", "period_s": 60}},
        ),
    )
    assert changed_fields(DOCUMENT, new) == [
        "/groups/network removed",
        "/groups/push added",
        "/uplink/centres/provincial/port: 20001 → 20009",
        "/uplink/centres/group/pw: ******** → ********",
    ]
    assert changed_fields(DOCUMENT, DOCUMENT) == []
