"""Passwords (ISC-2 §7.4.1.1(1)): complexity and expiry rules, slow salted hashes, checks.

- Complexity: at least ``min_length`` printable ASCII characters mixing ``min_classes`` of
  lower case, upper case, digits and symbols, not containing the user's ID. ASCII because a
  password is typed on a gateway's console and repeated in the ``X-Confirm`` header of every
  control operation (HTTP header values are Latin-1 at best).
- Hashes: PBKDF2 (RFC 8018) with HMAC-SM3 from the 国密 facade as its PRF, a 16-byte random salt
  and ``kdf_iterations`` rounds, written ``pbkdf2-sm3$<rounds>$<salt>$<hash>`` (base64url).
  The rounds are in the hash, so raising them later still verifies old hashes (and a login
  rehashes). The clear text is never stored.
- Verification compares in constant time; an unknown user is checked against a dummy hash so
  a wrong name takes as long as a wrong password.

``python -m reference_terminal.security.passwords`` prints the hash of a password read from the
terminal, for ``security.initial_users[].password_hash``.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import re
import string
import sys
from functools import lru_cache

from protocols.smcrypto import hmac_sm3
from reference_terminal.config import PasswordRules
from reference_terminal.security.errors import PasswordRejected

SCHEME = "pbkdf2-sm3"
SALT_BYTES = 16
HASH_BYTES = 32  # one SM3 block: PBKDF2 needs a single PRF chain
DAY_S = 86400.0
_HASH = re.compile(r"^pbkdf2-sm3\$([0-9]{1,8})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{43})$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
#: No password is longer: a KDF over megabytes would be a denial of service.
MAX_LENGTH = 128


def _openssl_has_sm3() -> bool:
    try:
        hashlib.pbkdf2_hmac("sm3", b"", b"", 1)
    except ValueError:
        return False
    return True


#: OpenSSL's PBKDF2 (through hashlib) is ~8x faster than the loop below and lets go of the GIL
#: while it runs: a login's hash no longer holds up the event loop serving everyone else.
_OPENSSL_SM3 = _openssl_has_sm3()


def pbkdf2_sm3(password: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SM3 (RFC 8018 §5.2) of ``HASH_BYTES`` bytes: block 1 only."""
    if iterations < 1:
        raise ValueError(f"iterations must be ≥ 1, got {iterations}")
    if _OPENSSL_SM3:
        return hashlib.pbkdf2_hmac("sm3", password, salt, iterations, HASH_BYTES)
    return _pbkdf2_sm3_loop(password, salt, iterations)


def _pbkdf2_sm3_loop(password: bytes, salt: bytes, iterations: int) -> bytes:
    """The same, one HMAC at a time (an OpenSSL without SM3)."""
    u = hmac_sm3(password, salt + b"\x00\x00\x00\x01")
    out = int.from_bytes(u, "big")
    for _ in range(iterations - 1):
        u = hmac_sm3(password, u)
        out ^= int.from_bytes(u, "big")
    return out.to_bytes(HASH_BYTES, "big")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, iterations: int, *, salt: bytes | None = None) -> str:
    """The stored form of ``password``: ``pbkdf2-sm3$<rounds>$<salt>$<hash>``."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = pbkdf2_sm3(password.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def iterations_of(stored: str) -> int:
    """The rounds a stored hash was made with (0 for something that is not a hash)."""
    match = _HASH.match(stored)
    return int(match.group(1)) if match else 0


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant-time comparison).
    A malformed ``stored`` or an over-long password is simply a mismatch."""
    match = _HASH.match(stored)
    if match is None or len(password) > MAX_LENGTH:
        return False
    iterations = int(match.group(1))
    if iterations < 1:
        return False
    salt, expected = _unb64(match.group(2)), _unb64(match.group(3))
    # "surrogatepass": a lone surrogate (valid in JSON text) is just another wrong password
    actual = pbkdf2_sm3(password.encode("utf-8", "surrogatepass"), salt, iterations)
    return hmac.compare_digest(actual, expected)


@lru_cache(maxsize=8)
def dummy_hash(iterations: int) -> str:
    """A hash no password matches in practice, as costly as a real one: what an unknown user's
    password is checked against, so timing does not tell which user IDs exist."""
    return hash_password(_b64(os.urandom(24)), iterations)


def complexity_problems(password: str, rules: PasswordRules, user_id: str = "") -> list[str]:
    """Every rule ``password`` breaks, in words (empty: acceptable)."""
    problems = []
    if not _PRINTABLE_ASCII.match(password):
        problems.append("only printable ASCII characters (space to ~) are allowed")
    if len(password) < rules.min_length:
        problems.append(f"at least {rules.min_length} characters, got {len(password)}")
    if len(password) > MAX_LENGTH:
        problems.append(f"at most {MAX_LENGTH} characters, got {len(password)}")
    classes = [
        any(c in string.ascii_lowercase for c in password),
        any(c in string.ascii_uppercase for c in password),
        any(c in string.digits for c in password),
        any(c in string.punctuation or c == " " for c in password),
    ]
    if sum(classes) < rules.min_classes:
        problems.append(
            f"mix at least {rules.min_classes} of lower case, upper case, digits and symbols, "
            f"got {sum(classes)}"
        )
    if user_id and user_id.lower() in password.lower():
        problems.append("must not contain the user ID")
    return problems


def check_complexity(password: str, rules: PasswordRules, user_id: str = "") -> None:
    """Raise :class:`PasswordRejected` naming every rule ``password`` breaks."""
    problems = complexity_problems(password, rules, user_id)
    if problems:
        raise PasswordRejected("password too weak: " + "; ".join(problems))


def expires_at(set_at: float, rules: PasswordRules) -> float:
    """When a password set at ``set_at`` (terminal time) must be changed."""
    return set_at + rules.max_age_days * DAY_S


def expired(set_at: float, now: float, rules: PasswordRules) -> bool:
    return now >= expires_at(set_at, rules)


def main(argv: list[str] | None = None) -> int:
    """Read a password twice from the terminal and print its hash for the configuration."""
    rules = PasswordRules()
    args = sys.argv[1:] if argv is None else argv
    iterations = int(args[0]) if args else rules.kdf_iterations
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print("the two passwords differ", file=sys.stderr)
        return 1
    problems = complexity_problems(first, rules)
    if problems:
        print("too weak: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(hash_password(first, iterations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
