"""Passwords (ISC-2 §7.4.1.1(1) 身份鉴别信息应具有复杂度要求，并进行有效期限制): the complexity
and expiry rules, and how a password is kept: PBKDF2-HMAC-SM3, salted, never clear text,
compared in constant time."""

from __future__ import annotations

import hmac
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from reference_terminal.config import PASSWORD_HASH_PATTERN, PasswordRules
from reference_terminal.security.errors import PasswordRejected
from reference_terminal.security.passwords import (
    check_complexity,
    complexity_problems,
    dummy_hash,
    expired,
    expires_at,
    hash_password,
    iterations_of,
    pbkdf2_sm3,
    verify_password,
)

RULES = PasswordRules(kdf_iterations=10_000)


@pytest.mark.parametrize(
    ("candidate", "broken"),
    [
        ("Sh0rt!", "at least 8 characters"),
        ("alllowercase", "mix at least 3"),
        ("lower1234", "mix at least 3"),
        ("Operator!2026", "must not contain the user ID"),
        ("Pässw0rd!x", "printable ASCII"),
        ("Tab\there1!", "printable ASCII"),
        ("A1!" + "x" * 200, "at most 128"),
    ],
)
def test_a_weak_password_is_refused_naming_the_rule_it_breaks(candidate: str, broken: str) -> None:
    with pytest.raises(PasswordRejected, match=re.escape(broken)) as caught:
        check_complexity(candidate, RULES, "operator")
    assert "ISC-2 §7.4.1.1(1)" in str(caught.value)
    assert "复杂度要求" in str(caught.value)


@pytest.mark.parametrize(
    "candidate", ["Adm1n!pass", "correct horse 9", "UPPER lower 7", "a1B2c3D4"]
)
def test_a_password_mixing_three_classes_is_accepted(candidate: str) -> None:
    assert complexity_problems(candidate, RULES, "admin") == []


def test_the_rules_are_configurable() -> None:
    strict = PasswordRules(min_length=12, min_classes=4)
    assert complexity_problems("Adm1n!pass", strict) == ["at least 12 characters, got 10"]
    assert complexity_problems("Adm1n!passw0rd", strict) == []
    assert complexity_problems("Admin1passw0rd", strict) == [
        "mix at least 4 of lower case, upper case, digits and symbols, got 3"
    ]


def test_a_password_expires_after_max_age_days() -> None:
    rules = PasswordRules(max_age_days=90)
    set_at = 1_800_000_000.0
    assert expires_at(set_at, rules) == set_at + 90 * 86400
    assert not expired(set_at, set_at + 90 * 86400 - 1, rules)
    assert expired(set_at, set_at + 90 * 86400, rules)


def test_the_hash_is_pbkdf2_hmac_sm3_salted_and_self_describing() -> None:
    stored = hash_password("Adm1n!pass", 10_000, salt=b"0123456789abcdef")
    assert re.match(PASSWORD_HASH_PATTERN, stored), "the configuration accepts what is made"
    scheme, rounds, _salt, _digest = stored.split("$")
    assert (scheme, rounds) == ("pbkdf2-sm3", "10000")
    assert "Adm1n!pass" not in stored
    assert iterations_of(stored) == 10_000
    # Two hashes of one password differ (random salt), both verify.
    again = hash_password("Adm1n!pass", 10_000)
    assert again != hash_password("Adm1n!pass", 10_000)
    assert verify_password("Adm1n!pass", again)


def test_pbkdf2_sm3_agrees_with_openssls_pbkdf2_over_sm3() -> None:
    """An independent implementation (OpenSSL through ``cryptography``) gives the same bytes."""
    for password, salt, rounds in [(b"pw", b"salt", 1), (b"Adm1n!pass", b"s" * 16, 1000)]:
        reference = PBKDF2HMAC(hashes.SM3(), 32, salt, rounds).derive(password)
        assert pbkdf2_sm3(password, salt, rounds) == reference


def test_verification_accepts_only_the_password_and_never_raises() -> None:
    stored = hash_password("Adm1n!pass", 10_000)
    assert verify_password("Adm1n!pass", stored)
    assert not verify_password("adm1n!pass", stored)
    assert not verify_password("", stored)
    assert not verify_password("Adm1n!pass", "not a hash")
    assert not verify_password("Adm1n!pass", stored.replace("10000", "0", 1))
    assert not verify_password("x" * 10_000, stored)


def test_verification_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    verify_password("wrong", hash_password("Adm1n!pass", 10_000))
    assert len(calls) == 1 and len(calls[0][0]) == len(calls[0][1]) == 32


def test_an_unknown_user_is_checked_against_an_equally_costly_dummy() -> None:
    assert iterations_of(dummy_hash(20_000)) == 20_000
    assert dummy_hash(20_000) == dummy_hash(20_000)  # made once
    assert not verify_password("Adm1n!pass", dummy_hash(20_000))


def test_the_command_prints_a_hash_for_the_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m reference_terminal.security.passwords [rounds]``: the installer's way to put
    an initial password in the configuration without its clear text."""
    import getpass

    from reference_terminal.security import passwords

    answers = iter(["Adm1n!pass", "Adm1n!pass", "weak", "weak", "Adm1n!pass", "typo"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert passwords.main(["10000"]) == 0
    stored = capsys.readouterr().out.strip()
    assert re.match(PASSWORD_HASH_PATTERN, stored) and verify_password("Adm1n!pass", stored)
    assert passwords.main([]) == 1
    assert "too weak" in capsys.readouterr().err
    assert passwords.main([]) == 1
    assert "differ" in capsys.readouterr().err
