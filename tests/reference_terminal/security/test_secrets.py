"""Secrets at rest (ISC-2 §7.4.1.4(1)(2)): a key file of its own (0600), SM4 for
confidentiality, HMAC-SM3 for integrity, one key pair per purpose."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reference_terminal.security.errors import KeyFileError, SecretsError
from reference_terminal.security.secrets import (
    SealedFile,
    SecretBox,
    load_or_create_key,
)
from simulators.power import VolatileMount
from tests.simulators.power.conftest import needs_fuse, on_mount

SECRET = "hj212-pw=Gw2026; cp_key=00112233445566778899aabbccddeeff"


def test_the_key_file_is_made_on_first_use_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "terminal.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == key  # the same key on the next start


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "terminal.key"
    load_or_create_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match=r"mode 0644.*chmod 600") as caught:
        load_or_create_key(path)
    assert "ISC-2 §7.4.1.4" in str(caught.value)


def test_a_key_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "terminal.key"
    path.write_text("not hex\n")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="32 bytes"):
        load_or_create_key(path)


def test_sealed_data_round_trips_and_shows_nothing_in_the_clear(tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "k")
    sealed = box.seal("config", SECRET.encode())
    assert SECRET.encode() not in sealed and b"Gw2026" not in sealed
    assert box.open("config", sealed) == SECRET.encode()
    assert box.seal("config", SECRET.encode()) != sealed  # a fresh IV each time
    token = box.seal_text("config", SECRET)
    assert token.startswith("sm4:") and "Gw2026" not in token
    assert box.open_text("config", token) == SECRET


def test_any_changed_bit_is_detected_before_decryption(tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "k")
    sealed = box.seal("config", SECRET.encode())
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            tampered = bytearray(sealed)
            tampered[i] ^= bit
            with pytest.raises(SecretsError):
                box.open("config", bytes(tampered))
    for cut in (sealed[:-1], sealed[1:], sealed[:40], b""):
        with pytest.raises(SecretsError):
            box.open("config", cut)


def test_another_key_or_another_purpose_does_not_open_it(tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "a")
    other = SecretBox.from_key_file(tmp_path / "b")
    sealed = box.seal("users", b"accounts")
    with pytest.raises(SecretsError, match="HMAC-SM3"):
        other.open("users", sealed)
    with pytest.raises(SecretsError, match="HMAC-SM3"):
        box.open("audit-anchor", sealed)  # a user file cannot pass for an audit anchor
    with pytest.raises(SecretsError):
        box.open_text("config", "sm4:!!!not base64")
    with pytest.raises(SecretsError):
        box.open_text("config", "plain text")


def test_a_sealed_file_is_private_atomic_and_tamper_evident(tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "k")
    file = SealedFile(tmp_path / "state" / "users.sealed", box, "users")
    assert file.read() is None
    file.write({"users": [{"id": "admin", "password": SECRET}]})
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert b"Gw2026" not in file.path.read_bytes()
    assert file.read() == {"users": [{"id": "admin", "password": SECRET}]}
    assert not list(file.path.parent.glob("*.part"))
    data = bytearray(file.path.read_bytes())
    data[20] ^= 0x04
    file.path.write_bytes(bytes(data))
    with pytest.raises(SecretsError, match="users"):
        file.read()


@needs_fuse
def test_a_power_cut_after_a_quick_replace_leaves_a_readable_file(tmp_path: Path) -> None:
    """A replace without ``durable`` (a login's bookkeeping) may be undone by a power cut, but
    the file is then the previous version, never an empty or torn one the terminal could not
    boot on."""
    box = SecretBox.from_key_file(tmp_path / "terminal.key")

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        file = SealedFile(mnt / "state" / "users.sealed", box, "users")
        file.write({"version": 1})
        file.write({"version": 2}, durable=False)
        await mount.cut()
        await mount.restore()
        assert file.read() in ({"version": 1}, {"version": 2})

    on_mount(tmp_path, body)
