"""Terminal adapters are found by kind through the ``carbench.adapters`` entry points, so the
suites never import ``bench`` to build the terminal under test."""

from __future__ import annotations

import inspect

import pytest

from bench.adapters.external import ExternalDut
from bench.adapters.process import ProcessDut
from bench.adapters.reference import ReferenceDut
from conformance.adapters import AdapterFactory, installed_kinds, load_adapter
from conformance.dut import DutError


def test_each_kind_is_its_adapter_class() -> None:
    assert load_adapter("reference") is ReferenceDut
    assert load_adapter("process") is ProcessDut
    assert load_adapter("external") is ExternalDut


def test_an_unknown_kind_is_refused_naming_it_and_the_kinds_installed() -> None:
    with pytest.raises(DutError) as refused:
        load_adapter("vendor-box")
    message = str(refused.value)
    assert "'vendor-box'" in message
    assert "external" in message
    assert "reference" in message


def test_every_installed_kind_takes_the_one_factory_signature() -> None:
    expected = list(inspect.signature(AdapterFactory.__call__).parameters.values())[1:]
    assert {"reference", "process", "external"} <= set(installed_kinds())
    for kind in installed_kinds():
        taken = list(inspect.signature(load_adapter(kind)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in taken] == [
            (p.name, p.kind, p.default) for p in expected
        ], kind
