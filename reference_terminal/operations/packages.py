"""Application packages (ISC-2 §8.4 「远程安装、卸载、升级应用」): what one is, how it is checked.

A package is a zip file holding ``manifest.json`` and the application's files::

    {"name": "display", "version": "1.2.0", "entry": "main.py",
     "description": "local display of the point states", "permissions": []}

- ``name``: ``[a-z][a-z0-9_-]{0,31}``; ``version``: 1 to 4 dot-separated numbers; ``entry``:
  the Python file the terminal runs (``python -I entry`` in the application's directory).
- ``permissions``: must be empty. An application gets nothing of the terminal: not its store,
  not its keys, not its configuration (ISC-2 §8.4 「不应更改、复制及读取碳排放数据」), so a
  package asking for anything is refused rather than silently given less.

It comes with a detached **SM2 signature** (DER, GB/T 35276 SM2 with SM3 over ``Z ‖ package``,
the default user ID) made by the vendor's key; the terminal accepts it only when one of its
trusted public keys (``apps.trusted_keys``) verifies it, before a byte of it is unpacked. The
SM3 digest of the package is kept with the installed version.

Unpacking refuses absolute paths, ``..``, links, devices and more than the size limit.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from protocols.smcrypto import Sm2PublicKey, SmCryptoError, sm3

MANIFEST = "manifest.json"
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
VERSION = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6}){0,3}$")
MAX_FILES = 1000
#: Unpacked size limit, as a multiple of the package size limit (zip bombs).
INFLATE_LIMIT = 8


class PackageError(ValueError):
    """A package the terminal refuses; ``code`` says why (``signature``, ``manifest``,
    ``package``, ``untrusted``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    version: str
    entry: str
    description: str = ""

    @property
    def version_key(self) -> tuple[int, ...]:
        return version_key(self.version)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@dataclass(frozen=True, slots=True)
class Signer:
    """The trusted key that verified a package: its file and SM3 fingerprint."""

    source: str
    fingerprint: str  # SM3 of the public key's DER, hex, first 32 digits


@dataclass(frozen=True, slots=True)
class TrustedKey:
    source: str
    key: Sm2PublicKey

    @property
    def fingerprint(self) -> str:
        return sm3(self.key.to_der()).hex()[:32]


def load_trusted_keys(paths: list[str]) -> list[TrustedKey]:
    """The public keys (PEM) packages must be signed with; a key that cannot be read is an
    error naming the file (better no installs than installs checked against fewer keys)."""
    out = []
    for i, path in enumerate(paths):
        try:
            out.append(TrustedKey(path, Sm2PublicKey.from_pem(Path(path).read_bytes())))
        except OSError as exc:
            raise PackageError(
                "untrusted", f"apps.trusted_keys[{i}]: cannot read {path}: {exc.strerror}"
            ) from None
        except SmCryptoError as exc:
            raise PackageError(
                "untrusted", f"apps.trusted_keys[{i}]: {path} is not an SM2 public key: {exc}"
            ) from None
    return out


def verify(package: bytes, signature: bytes, keys: list[TrustedKey]) -> Signer:
    """The trusted key that signed ``package``, or :class:`PackageError`."""
    if not keys:
        raise PackageError(
            "untrusted",
            "the terminal trusts no signing key (apps.trusted_keys): it installs nothing",
        )
    for trusted in keys:
        try:
            if trusted.key.verify_der(package, signature):
                return Signer(trusted.source, trusted.fingerprint)
        except SmCryptoError as exc:
            raise PackageError(
                "signature", f"the signature is not an SM2 DER signature: {exc}"
            ) from None
    raise PackageError(
        "signature",
        "the SM2 signature does not verify with any trusted key: the package was changed or "
        "signed by someone the terminal does not trust",
    )


def _text(data: dict[str, object], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PackageError("manifest", f"manifest.json: {key} must be a non-empty string")
    if pattern is not None and not pattern.match(value):
        raise PackageError(
            "manifest", f"manifest.json: {key} {value!r} must match {pattern.pattern}"
        )
    return value


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise PackageError("package", f"{name!r}: a package holds relative paths only")
    return path


def open_package(package: bytes, max_bytes: int) -> tuple[zipfile.ZipFile, Manifest]:
    """The package's zip and checked manifest (the signature is checked before this)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise PackageError("package", f"not a zip file: {exc}") from None
    if len(members) > MAX_FILES:
        raise PackageError("package", f"{len(members)} files: at most {MAX_FILES}")
    total = 0
    names = set()
    for member in members:
        _member_path(member.filename)
        kind = stat.S_IFMT(member.external_attr >> 16)  # 0: a zip tool that says nothing
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise PackageError("package", f"{member.filename}: only files and directories")
        total += member.file_size
        names.add(member.filename)
    if total > max_bytes * INFLATE_LIMIT:
        raise PackageError(
            "package", f"unpacks to {total} bytes: at most {max_bytes * INFLATE_LIMIT}"
        )
    if MANIFEST not in names:
        raise PackageError("manifest", f"no {MANIFEST} at the top of the package")
    try:
        data = json.loads(archive.read(MANIFEST))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PackageError("manifest", f"{MANIFEST} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PackageError("manifest", f"{MANIFEST} must be an object")
    permissions = data.get("permissions", [])
    if permissions not in ([], None):
        raise PackageError(
            "manifest",
            f"manifest.json: permissions {permissions!r}: an application gets no access to the "
            "terminal's data, keys or configuration (ISC-2 §8.4)",
        )
    entry = _text(data, "entry")
    _member_path(entry)
    if entry not in names or not entry.endswith(".py"):
        raise PackageError(
            "manifest", f"manifest.json: entry {entry!r} is not a .py file of the package"
        )
    description = data.get("description", "")
    manifest = Manifest(
        name=_text(data, "name", NAME),
        version=_text(data, "version", VERSION),
        entry=entry,
        description=description if isinstance(description, str) else "",
    )
    return archive, manifest


def unpack(archive: zipfile.ZipFile, into: Path) -> None:
    """Every file of ``archive`` under ``into`` (made), each fsynced (checked by
    :func:`open_package` first)."""
    into.mkdir(parents=True)
    for member in archive.infolist():
        target = into.joinpath(*_member_path(member.filename).parts)
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, target.open("xb") as out:
            while chunk := source.read(1 << 16):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
