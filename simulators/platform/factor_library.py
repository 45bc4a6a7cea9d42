"""A platform's published emission-factor library, for terminals to download (CSMT §11.4
"在线下载": methodology configuration online, from the platform).

The platform publishes one library at a time, at ``GET {factors_path}`` of its HTTPS centre, in
the envelope of :mod:`protocols.factor_envelope` (SM3 digest of the library, SM2 signature by
the platform's publishing key over the format, publisher, version, time and digest).

A terminal checks the digest, then the signature against the publishing keys it trusts, and
only then reads the library. :meth:`FactorPublisher.publish` can also put up a *tampered*
publication (the library changed after signing), so the bench can check that a terminal
refuses one.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from protocols.factor_envelope import FORMAT, signed_text
from protocols.smcrypto import Sm2PrivateKey, Sm2PublicKey, sm3

DEFAULT_PATH: Final = "/methodology/factors"


class PublicationError(ValueError):
    """A library the platform cannot publish (CSMT §11.4 needs a library file to download)."""


@dataclass(frozen=True, slots=True)
class Publication:
    """One published library, as terminals receive it."""

    publisher: str
    version: str
    published_at: str
    library: str
    sm3: str
    signature: str  # base64 DER

    def envelope(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "publisher": self.publisher,
            "version": self.version,
            "published_at": self.published_at,
            "sm3": self.sm3,
            "signature": self.signature,
            "library": self.library,
        }

    def body(self) -> bytes:
        return json.dumps(self.envelope(), ensure_ascii=False).encode("utf-8")


@dataclass
class FactorPublisher:
    """The platform's publishing key and what it currently publishes (None: nothing yet)."""

    name: str
    key: Sm2PrivateKey
    current: Publication | None = None

    @classmethod
    def create(cls, name: str, key_file: Path | None = None) -> FactorPublisher:
        """A publisher with a new key (written to ``key_file`` when given, its public key
        beside it as ``<stem>.pub.pem``), or the key already in ``key_file``."""
        if key_file is not None and key_file.exists():
            return cls(name, Sm2PrivateKey.from_pem(key_file.read_bytes()))
        key = Sm2PrivateKey.generate()
        if key_file is not None:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(key.to_pem(), encoding="ascii")
            key_file.chmod(0o600)
            public_key_file(key_file).write_text(key.public_key().to_pem(), encoding="ascii")
        return cls(name, key)

    @property
    def public_key(self) -> Sm2PublicKey:
        return self.key.public_key()

    def publish(
        self, library: str, version: str, at: datetime, *, tamper: bool = False
    ) -> Publication:
        """Publish ``library`` (YAML or JSON text) as ``version``; ``tamper``: change the text
        after signing it (a publication every terminal must refuse)."""
        if not library.strip():
            raise PublicationError("CSMT §11.4: an empty library cannot be published")
        if not version.strip() or "\n" in version:
            raise PublicationError(f"version {version!r}: one line of text is needed")
        published_at = at.isoformat(timespec="seconds")
        digest = sm3(library.encode("utf-8")).hex()
        signature = self.key.sign_der(signed_text(self.name, version, published_at, digest))
        served = library + "\n# changed after signing\n" if tamper else library
        publication = Publication(
            publisher=self.name,
            version=version,
            published_at=published_at,
            library=served,
            sm3=digest,
            signature=base64.b64encode(signature).decode("ascii"),
        )
        self.current = publication
        return publication

    def withdraw(self) -> None:
        self.current = None


def public_key_file(key_file: Path) -> Path:
    return key_file.with_name(f"{key_file.stem}.pub.pem")
