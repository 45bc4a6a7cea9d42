"""Feature detection: what this machine can do, and the reason when it cannot."""

from __future__ import annotations

import os
import shutil

import pytest

from simulators.packets import FeatureUnavailable, features


def test_every_feature_is_reported_with_a_reason() -> None:
    found = features.probe_all()
    assert set(found) == set(features.FEATURES)
    for name, feature in found.items():
        assert feature.name == name
        assert feature.reason, f"{name} has no reason"
        assert (features.missing(name) is None) == feature.available


def test_without_root_every_feature_says_it_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for name in features.FEATURES:
        feature = features.probe(name)
        assert not feature.available
        assert "needs root" in feature.reason


def test_a_missing_tool_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert features.probe("tbf").reason == "the `tc` command (iproute2) is not installed"
    assert "iptables-restore" in features.probe("iptables").reason
    assert "`ip` command" in features.probe("netns").reason


def test_require_raises_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        features, "check", lambda name: features.Feature(name, False, "kernel built without it")
    )
    with pytest.raises(FeatureUnavailable, match="tbf is unavailable: kernel built without it"):
        features.require("tbf")


def test_unknown_features_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown feature 'netem'"):
        features.check("netem")
