"""YAML a person wrote: every mistake, a number or a date Python cannot build included, is a
YAML error at its line, said in one line."""

from __future__ import annotations

import contextlib

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from common import yaml_input


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("seed: 1\nvalue: " + "9" * 5000, "f.yaml:2: not valid YAML: int Exceeds the limit"),
        ("a:\n  when: 2026-13-45", "f.yaml:2: not valid YAML: timestamp month must be in 1..12"),
        ("a: [1,\n  2", "f.yaml:3: not valid YAML: did not find expected ',' or ']'"),
    ],
)
def test_a_mistake_is_a_yaml_error_at_its_line(text: str, said: str) -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml_input.load(text)
    said_now = yaml_input.where("f.yaml", caught.value)
    assert said_now.startswith(said) and "\n" not in said_now


def test_what_it_can_build_loads_as_the_safe_loader_would() -> None:
    text = "a: 1\nb: 2.5\nc: 2026-11-29\nd: [x, {e: null}]\n"
    assert yaml_input.load(text) == yaml.safe_load(text)


@given(st.text(max_size=200))
def test_any_text_loads_or_is_a_yaml_error(text: str) -> None:
    with contextlib.suppress(yaml.YAMLError):  # the only error it may raise
        yaml_input.load(text)
