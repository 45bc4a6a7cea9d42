"""The envelope a platform publishes an emission-factor library in, for terminals to download
(CSMT §11.4 "在线下载"); the platform simulator builds it, the terminal checks it.

A JSON object::

    {"format": "carbench-factor-library/1", "publisher": "enterprise", "version": "3",
     "published_at": "2027-01-01T00:10:00+08:00", "sm3": "<hex>", "signature": "<base64>",
     "library": "<the library file, YAML text>"}

- ``sm3``: SM3 of the UTF-8 bytes of ``library`` (integrity: a changed byte is seen).
- ``signature``: SM2 with SM3 (GB/T 35276, default user ID, DER, base64) by the platform's
  publishing key over :func:`signed_text` — the format, publisher, version, time and digest,
  one ``name: value`` line each, each ending in a newline. Signing the digest signs the
  library, and signing the version stops an old library being replayed as a new version.
"""

from __future__ import annotations

from typing import Final

FORMAT: Final = "carbench-factor-library/1"


def signed_text(publisher: str, version: str, published_at: str, digest_hex: str) -> bytes:
    """The bytes the platform signs."""
    lines = (
        f"format: {FORMAT}",
        f"publisher: {publisher}",
        f"version: {version}",
        f"published_at: {published_at}",
        f"sm3: {digest_hex}",
    )
    return ("\n".join(lines) + "\n").encode("utf-8")
