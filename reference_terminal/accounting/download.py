"""A factor library downloaded from a platform, checked before it is read (CSMT §11.4 online
methodology configuration).

The platform answers with the envelope of :mod:`protocols.factor_envelope` (its SM3 digest
catches a changed byte; its SM2 signature says the platform the terminal trusts published this
library as this version, so an old one cannot come back as a new version).

A terminal configured with publishing keys (``accounting.factor_download.trusted_keys``)
takes only a signed envelope that one of them verifies. Without keys it still checks the
digest, and also takes a bare library file (the platform then vouches for nothing: the event
says ``signature: none``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.factor_envelope import FORMAT, signed_text
from protocols.smcrypto import Sm2PublicKey, SmCryptoError, sm3
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary


class DownloadRefused(AccountingError):
    """A downloaded library the terminal does not take; ``code`` says why (``envelope``,
    ``digest``, ``signature``, ``unsigned``, ``untrusted_key``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str
    publisher: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64, pattern=r"^[^\n]+$")
    published_at: str = Field(min_length=1, max_length=64, pattern=r"^[^\n]+$")
    sm3: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(min_length=1, max_length=512)
    library: str


@dataclass(frozen=True, slots=True)
class Downloaded:
    """What a download gave: the library file's text and what the platform said of it."""

    library: bytes
    publisher: str | None = None  # None: a bare library file, no envelope
    version: str | None = None
    published_at: str | None = None
    sm3: str = ""
    signature: str = "none"  # verified | none


def load_keys(paths: list[str]) -> list[Sm2PublicKey]:
    """The trusted publishing keys; one that cannot be read is a configuration error."""
    keys = []
    for path in paths:
        try:
            keys.append(Sm2PublicKey.from_pem(Path(path).read_bytes()))
        except (OSError, SmCryptoError, ValueError) as exc:
            raise DownloadRefused(
                "untrusted_key", f"accounting.factor_download.trusted_keys: {path}: {exc}"
            ) from None
    return keys


def _is_envelope(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and "format" in data and "library" in data


def check(body: bytes, keys: list[Sm2PublicKey]) -> Downloaded:
    """The library in ``body`` once its digest and signature hold (see the module text)."""
    if not _is_envelope(body):
        if keys:
            raise DownloadRefused(
                "unsigned",
                "CSMT §11.4: the terminal trusts publishing keys, and this download is a bare "
                "library without the platform's signature",
            )
        return Downloaded(body, sm3=sm3(body).hex())
    try:
        envelope = _Envelope.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise DownloadRefused("envelope", f"the envelope: {where}: {first['msg']}") from None
    if envelope.format != FORMAT:
        raise DownloadRefused("envelope", f"format {envelope.format!r} is not {FORMAT!r}")
    library = envelope.library.encode("utf-8")
    digest = sm3(library).hex()
    if digest != envelope.sm3:
        raise DownloadRefused(
            "digest",
            f"the library's SM3 is {digest}, the platform published {envelope.sm3}: it was "
            "changed on the way or after publishing",
        )
    verified = "none"
    if keys:
        try:
            signature = base64.b64decode(envelope.signature, validate=True)
        except binascii.Error:
            raise DownloadRefused("signature", "the signature is not base64") from None
        message = signed_text(
            envelope.publisher, envelope.version, envelope.published_at, envelope.sm3
        )
        if not any(_verifies(key, message, signature) for key in keys):
            raise DownloadRefused(
                "signature",
                "CSMT §11.4: the SM2 signature of the publication does not verify with any "
                "trusted publishing key (changed, or published by someone else)",
            )
        verified = "verified"
    return Downloaded(
        library,
        publisher=envelope.publisher,
        version=envelope.version,
        published_at=envelope.published_at,
        sm3=digest,
        signature=verified,
    )


def _verifies(key: Sm2PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        return key.verify_der(message, signature)
    except SmCryptoError:
        return False


def parse_library(body: bytes, what: str) -> FactorLibrary:
    """A library file's text (YAML or JSON) as a library (``AccountingError`` if it is none);
    ``what`` names it in the message."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise AccountingError(f"{what} cannot be read: {exc}") from None
    return FactorLibrary.from_data(data, what)


def _slug(vintage: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", vintage).strip("-").lower() or "vintage"


def save_library(directory: Path, library: FactorLibrary) -> list[str]:
    """Each vintage of ``library`` as its own file in ``directory``, atomically and durably
    (the files ``POST /accounting/factors/import`` writes)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in library.vintages:
        one = FactorLibrary(
            {name: library.vintages[name]}, tuple(f for f in library.factors if f.vintage == name)
        )
        target = directory / f"{_slug(name)}.yaml"
        partial = target.with_suffix(".yaml.partial")
        one.export(partial)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.replace(target)
        written.append(str(target))
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return written
