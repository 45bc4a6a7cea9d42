"""``carbench verify results.json``: is this the run that was signed, and by whom?"""

from __future__ import annotations

from pathlib import Path

import click

from bench.report import signing
from protocols.smcrypto import Sm2PublicKey, SmCryptoError

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_USAGE = 2


def main(path: Path, pubkey: Path | None, content_only: bool) -> int:
    key: Sm2PublicKey | None = None
    if pubkey is not None:
        try:
            key = Sm2PublicKey.from_pem(pubkey.read_bytes())
        except (OSError, SmCryptoError) as exc:
            click.echo(f"carbench verify: {pubkey} is not an SM2 public key: {exc}", err=True)
            return EXIT_USAGE
    try:
        document = signing.read(path)
        done = signing.verify(
            document, public_key=key, run_dir=None if content_only else path.parent
        )
    except signing.VerificationError as exc:
        click.echo(click.style(f"FAILED {path}: {exc}", fg="red"), err=True)
        return EXIT_TAMPERED
    who = (
        "the given public key"
        if done.key_given
        else "the key embedded in the file (pass --pubkey to check who signed it)"
    )
    files = "" if content_only else f"; {done.files_checked} run files match their SM3"
    click.echo(
        f"OK {path}: SM3 {done.sm3} matches its content; SM2 signature valid with {who}, "
        f"fingerprint {done.fingerprint}{files}"
    )
    return EXIT_OK
