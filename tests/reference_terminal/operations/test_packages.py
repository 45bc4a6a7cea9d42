"""Application packages: the SM2 signature over the package, the manifest, safe unpacking."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from bench.adapters.apps import WELL, package
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.operations.packages import (
    PackageError,
    TrustedKey,
    load_trusted_keys,
    open_package,
    unpack,
    verify,
)

LIMIT = 1 << 20


@pytest.fixture(scope="module")
def key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


def trusted(key: Sm2PrivateKey) -> list[TrustedKey]:
    return [TrustedKey("vendor.pem", key.public_key())]


def zipped(files: dict[str, str], *, manifest: dict[str, object] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        if manifest is not None:
            archive.writestr("manifest.json", json.dumps(manifest))
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


MANIFEST: dict[str, object] = {"name": "display", "version": "1.0.0", "entry": "main.py"}


def test_a_signed_package_verifies_and_names_its_signer(key: Sm2PrivateKey) -> None:
    data = package("display", "1.0.0", WELL)
    signer = verify(data, key.sign_der(data), trusted(key))
    assert signer.source == "vendor.pem"
    assert len(signer.fingerprint) == 32


@pytest.mark.parametrize("change", ["tampered", "other key", "other package", "garbage"])
def test_a_package_not_signed_by_a_trusted_key_is_refused(key: Sm2PrivateKey, change: str) -> None:
    data = package("display", "1.0.0", WELL)
    signature = key.sign_der(data)
    if change == "tampered":
        data = data[:-1] + bytes([data[-1] ^ 1])
    elif change == "other key":
        signature = Sm2PrivateKey.generate().sign_der(data)
    elif change == "other package":
        signature = key.sign_der(package("display", "1.0.1", WELL))
    else:
        signature = b"\x30\x03\x02\x01\x01"
    with pytest.raises(PackageError) as refused:
        verify(data, signature, trusted(key))
    assert refused.value.code == "signature"


def test_no_trusted_key_installs_nothing(key: Sm2PrivateKey) -> None:
    data = package("display", "1.0.0", WELL)
    with pytest.raises(PackageError) as refused:
        verify(data, key.sign_der(data), [])
    assert refused.value.code == "untrusted"


def test_trusted_keys_are_read_from_pem_files(tmp_path: Path, key: Sm2PrivateKey) -> None:
    good = tmp_path / "vendor.pem"
    good.write_text(key.public_key().to_pem())
    assert load_trusted_keys([str(good)])[0].key == key.public_key()
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(PackageError, match=r"trusted_keys\[1\]"):
        load_trusted_keys([str(good), str(bad)])
    with pytest.raises(PackageError, match="cannot read"):
        load_trusted_keys([str(tmp_path / "missing.pem")])


@pytest.mark.parametrize(
    ("files", "manifest", "code", "words"),
    [
        ({"main.py": ""}, None, "manifest", "no manifest.json"),
        ({"main.py": ""}, {**MANIFEST, "name": "Bad Name"}, "manifest", "name"),
        ({"main.py": ""}, {**MANIFEST, "version": "1.x"}, "manifest", "version"),
        ({"main.py": ""}, {**MANIFEST, "entry": "other.py"}, "manifest", "entry"),
        ({"main.py": ""}, {**MANIFEST, "permissions": ["store"]}, "manifest", "no access"),
        ({"main.py": "", "../evil.py": ""}, MANIFEST, "package", "relative paths"),
        ({"main.py": "", "/etc/evil": ""}, MANIFEST, "package", "relative paths"),
    ],
)
def test_a_bad_package_is_refused_with_the_reason(
    files: dict[str, str], manifest: dict[str, object] | None, code: str, words: str
) -> None:
    with pytest.raises(PackageError) as refused:
        open_package(zipped(files, manifest=manifest), LIMIT)
    assert refused.value.code == code
    assert words in str(refused.value)


def test_not_a_zip_and_a_zip_bomb_are_refused() -> None:
    with pytest.raises(PackageError, match="not a zip"):
        open_package(b"PK nothing", LIMIT)
    big = zipped({"main.py": "", "data.txt": "0" * (9 * 2048)}, manifest=MANIFEST)
    with pytest.raises(PackageError, match="unpacks to"):
        open_package(big, 2048)


def test_unpacking_writes_every_file(tmp_path: Path) -> None:
    archive, manifest = open_package(
        zipped({"main.py": "print('ready')", "lib/util.py": "X = 1"}, manifest=MANIFEST), LIMIT
    )
    assert (manifest.name, manifest.version, manifest.entry) == ("display", "1.0.0", "main.py")
    unpack(archive, tmp_path / "display")
    assert (tmp_path / "display" / "lib" / "util.py").read_text() == "X = 1"
    assert json.loads((tmp_path / "display" / "manifest.json").read_text()) == MANIFEST


def test_a_link_in_a_package_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("manifest.json", json.dumps(MANIFEST))
        archive.writestr("main.py", "")
        link = zipfile.ZipInfo("store.db")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/var/lib/terminal/terminal.db")
    with pytest.raises(PackageError, match="only files and directories"):
        open_package(out.getvalue(), LIMIT)
