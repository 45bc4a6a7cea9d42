"""Application packages for the reference terminal's ``/apps`` (ISC-2 §8.4), made and signed by
the bench as a vendor would: a zip with ``manifest.json`` and ``main.py`` (the format is
documented in ``reference_terminal/operations/packages.py``), signed with SM2 (DER, SM3 with
the default user ID) by a key the adapter makes the terminal trust.

Three packages of one application: a first version, an upgrade, and an upgrade that is
signed and well formed but fails to start (it exits before saying ``ready``), which the
terminal must roll back.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from conformance.dut import AppPackage, AppPackages
from protocols.smcrypto import Sm2PrivateKey

NAME = "bench-probe"
#: A well-behaved application: says ready, then idles until stopped.
WELL = """\
import time

print("ready", flush=True)
while True:
    time.sleep(3600)
"""
#: An application that fails on start.
BROKEN = """\
raise SystemExit("bench-probe: broken on purpose (the terminal must roll back)")
"""
#: Every file of a package carries this time: the same package, byte for byte, every run.
STAMP = (2027, 1, 1, 0, 0, 0)


def package(name: str, version: str, main: str, description: str = "") -> bytes:
    manifest = {
        "name": name,
        "version": version,
        "entry": "main.py",
        "description": description,
        "permissions": [],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        files = (("manifest.json", json.dumps(manifest, indent=2)), ("main.py", main))
        for filename, text in files:
            info = zipfile.ZipInfo(filename, STAMP)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return out.getvalue()


def signed(key: Sm2PrivateKey, name: str, version: str, main: str, description: str) -> AppPackage:
    data = package(name, version, main, description)
    return AppPackage(name, version, data, key.sign_der(data))


def bench_packages(key: Sm2PrivateKey, name: str = NAME) -> AppPackages:
    return AppPackages(
        first=signed(key, name, "1.0.0", WELL, "carbench probe application"),
        upgrade=signed(key, name, "1.1.0", WELL, "carbench probe application, upgraded"),
        broken=signed(key, name, "1.2.0", BROKEN, "carbench probe application, broken"),
    )


def signing_key(directory: Path) -> tuple[Sm2PrivateKey, Path]:
    """A fresh signing key for one terminal, and its public key's PEM file (to trust)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = Sm2PrivateKey.generate()
    public = directory / "app-signing.pub.pem"
    public.write_text(key.public_key().to_pem(), encoding="ascii")
    return key, public
