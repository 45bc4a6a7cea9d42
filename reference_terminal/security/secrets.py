"""Secrets at rest (ISC-2 §7.4.1.4(1)(2)): SM4 for confidentiality, HMAC-SM3 for integrity.

- :func:`load_or_create_key` — the terminal's 32-byte master key, in a file of its own outside
  the store (a backup or a copy of the database does not carry it), created ``0600`` on first
  use and refused when others may read it.
- :class:`SecretBox` — seals bytes for a *purpose* (``"users"``, ``"audit-anchor"`` …): each
  purpose gets its own SM4 and HMAC keys derived from the master key, so a sealed user file
  cannot be passed off as an audit anchor. Encrypt-then-MAC: ``v1 ‖ SM4-CBC(iv ‖ c) ‖
  HMAC-SM3(purpose ‖ v1 ‖ iv ‖ c)``; the tag is checked (in constant time) before anything is
  decrypted. SM4-GCM would do both at once, but its GHASH is not an SM algorithm and the clause
  asks for 密码技术 for integrity: SM3 is the 国密 one.
- :class:`SealedFile` — a JSON document kept sealed on disk, replaced atomically.

The module is ``secrets`` of this package (``reference_terminal.security.secrets``); it never
shadows the standard library's (absolute imports only).
"""

from __future__ import annotations

import base64
import json
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any

from protocols.smcrypto import (
    SmCryptoError,
    hmac_sm3,
    hmac_sm3_verify,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
)
from reference_terminal.durable import fsync_dir, write_file
from reference_terminal.security.errors import KeyFileError, SecretsError

KEY_BYTES = 32
VERSION = b"\x01"
TAG_BYTES = 32
#: What a sealed text (a secret inside a configuration document) starts with.
TEXT_PREFIX = "sm4:"


def load_or_create_key(path: str | Path) -> bytes:
    """The master key in ``path`` (64 hex digits), made with mode 0600 if the file is absent.

    Refused when group or others have any access: a key readable by every local account
    protects nothing."""
    path = Path(path)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another opener made it meanwhile: use theirs
        return _read_key(path)
    except OSError as exc:
        raise KeyFileError(f"cannot create the key file {path}: {exc.strerror}") from None
    try:
        os.write(fd, os.urandom(KEY_BYTES).hex().encode() + b"\n")
        os.fsync(fd)  # a key lost on a power cut would make every sealed file unreadable
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"the key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or others "
            "may read it; make it 0600 (chmod 600) and owned by the terminal's account"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"the key file {path} does not hold {KEY_BYTES} bytes as hex digits")
    return key


@lru_cache(maxsize=64)
def _derive(master: bytes, purpose: str) -> tuple[bytes, bytes]:
    """(SM4 key, HMAC key) of one purpose: HMAC-SM3 of the master key over distinct labels,
    so no two purposes, and no two uses within a purpose, share a key."""
    label = purpose.encode()
    sm4_key = hmac_sm3(master, b"carbench/secrets/sm4/" + label)[:16]
    mac_key = hmac_sm3(master, b"carbench/secrets/hmac-sm3/" + label)
    return sm4_key, mac_key


class SecretBox:
    """Seals and opens bytes under the master key, one derived key pair per purpose."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise KeyFileError(f"the master key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._master = master_key

    @classmethod
    def from_key_file(cls, path: str | Path) -> SecretBox:
        return cls(load_or_create_key(path))

    def seal(self, purpose: str, plaintext: bytes) -> bytes:
        sm4_key, mac_key = _derive(self._master, purpose)
        body = VERSION + sm4_cbc_encrypt(sm4_key, plaintext)
        return body + hmac_sm3(mac_key, purpose.encode() + b"\x00" + body)

    def open(self, purpose: str, sealed: bytes) -> bytes:
        """The plaintext; :class:`SecretsError` if a single bit was changed, the key or the
        purpose is wrong, or the data was never sealed here."""
        sm4_key, mac_key = _derive(self._master, purpose)
        body, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
        if len(sealed) < 1 + 32 + TAG_BYTES or body[:1] != VERSION:
            raise SecretsError(f"sealed {purpose} data is not in the v1 format (or truncated)")
        if not hmac_sm3_verify(mac_key, purpose.encode() + b"\x00" + body, tag):
            raise SecretsError(
                f"sealed {purpose} data fails its HMAC-SM3 check: altered, or sealed under "
                "another key"
            )
        try:
            return sm4_cbc_decrypt(sm4_key, body[1:])
        except SmCryptoError as exc:  # cannot happen once the tag matched; never trust that
            raise SecretsError(f"sealed {purpose} data does not decrypt: {exc}") from None

    def mac(self, purpose: str, data: bytes) -> bytes:
        """HMAC-SM3 of ``data`` under the purpose's key (a seal without encryption)."""
        return hmac_sm3(_derive(self._master, purpose)[1], data)

    def mac_ok(self, purpose: str, data: bytes, tag: bytes) -> bool:
        return hmac_sm3_verify(_derive(self._master, purpose)[1], data, tag)

    def seal_text(self, purpose: str, text: str) -> str:
        """``sm4:<base64url>``: a secret that can stand in a configuration document."""
        sealed = self.seal(purpose, text.encode("utf-8"))
        return TEXT_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

    def open_text(self, purpose: str, token: str) -> str:
        if not token.startswith(TEXT_PREFIX):
            raise SecretsError(f"a sealed {purpose} text starts with {TEXT_PREFIX!r}")
        try:
            sealed = base64.urlsafe_b64decode(token[len(TEXT_PREFIX) :].encode("ascii"))
            return self.open(purpose, sealed).decode("utf-8")
        except (ValueError, UnicodeError):  # binascii.Error is a ValueError
            raise SecretsError(f"sealed {purpose} text is not base64url of sealed UTF-8") from None


class SealedFile:
    """A JSON document sealed in one file (mode 0600), replaced atomically on every write."""

    def __init__(self, path: str | Path, box: SecretBox, purpose: str) -> None:
        self.path = Path(path)
        self._box = box
        self._purpose = purpose

    def read(self) -> Any:
        """The document, or None when the file does not exist."""
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretsError(f"cannot read {self.path}: {exc.strerror}") from None
        plain = self._box.open(self._purpose, sealed)
        try:
            return json.loads(plain)
        except ValueError:
            raise SecretsError(f"{self.path} opens but holds no JSON document") from None

    def write(self, document: Any, *, durable: bool = True) -> None:
        """Replace the file. The data is fsynced before the rename in any case: renamed
        unsynced, a power cut can leave the new name on an empty or torn file, and the terminal
        would not boot on it. ``durable`` also fsyncs the rename (credentials); without it a
        cut may bring back the previous version (fine for a hint such as the anchor)."""
        data = self._box.seal(
            self._purpose, json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
        )
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_file(self.path, data, mode=0o600, durable=durable)
