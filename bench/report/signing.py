"""``results.json`` integrity: an SM3 hash of its canonical content and an SM2 signature.

The signed content is the whole document minus its ``integrity`` block, serialised as
canonical JSON (keys sorted, no whitespace, UTF-8), so re-indenting the file keeps it valid
while changing any value — one character of one test's reason — breaks it. The public key
travels inside the file, which proves only that the file is intact; ``--pubkey`` (or the
fingerprint printed at signing) proves *who* signed it.

The bench's key is made on first use under ``$XDG_CONFIG_HOME/carbench`` (``~/.config``),
mode 0600, or given with ``--key``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.smcrypto import DEFAULT_UID, Sm2PrivateKey, Sm2PublicKey, SmCryptoError, sm3

ALGORITHM = "SM2-with-SM3"
CANONICAL = "JSON: keys sorted, separators ',' ':', UTF-8, without the integrity block"
INTEGRITY = "integrity"
KEY_FILE = "bench-signing-key.pem"
#: The run's page, signed beside results.json (it shows results.json's hash, so it cannot be in
#: the manifest results.json signs): ``report.html.sig``.
REPORT = "report.html"
RESULTS = "results.json"
#: the dossier a certifier gets (bench.report.dossier), signed beside each file when made
DOSSIER_HTML = "dossier/dossier.html"
DOSSIER_PDF = "dossier/dossier.pdf"
PUBLIC_KEY_FILE = "bench-signing-key.pub.pem"


class SigningError(Exception):
    """The bench cannot sign: no usable key."""


class VerificationError(Exception):
    """``results.json`` is not what was signed; the message says what does not match."""


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    content = {k: v for k, v in document.items() if k != INTEGRITY}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def fingerprint(key: Sm2PublicKey) -> str:
    """SM3 of the key's SubjectPublicKeyInfo, grouped for reading aloud over the phone."""
    digest = sm3(key.to_der()).hex()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def default_key_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carbench"


def load_or_create_key(path: Path | None = None) -> tuple[Sm2PrivateKey, Path, bool]:
    """``(key, where, created)``. A given path must exist; the default one is made if absent."""
    if path is not None:
        try:
            return Sm2PrivateKey.from_pem(path.read_bytes()), path, False
        except OSError as exc:
            raise SigningError(f"cannot read signing key {path}: {exc.strerror or exc}") from None
        except SmCryptoError as exc:
            raise SigningError(f"{path} is not an SM2 private key in PEM: {exc}") from None
    where = default_key_dir() / KEY_FILE
    if where.exists():
        key, _, _ = load_or_create_key(where)
        return key, where, False
    key = Sm2PrivateKey.generate()
    try:
        where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two runs starting at once must not overwrite each other's fresh key
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.to_pem())
        (where.parent / PUBLIC_KEY_FILE).write_text(key.public_key().to_pem())
    except FileExistsError:
        return load_or_create_key(where)
    except OSError as exc:
        raise SigningError(
            f"cannot create the bench signing key in {where.parent}: {exc.strerror or exc}; "
            "give one with --key FILE (openssl genpkey -algorithm SM2 -out FILE)"
        ) from None
    return key, where, True


def sign(document: dict[str, Any], key: Sm2PrivateKey) -> dict[str, Any]:
    """The document with its ``integrity`` block (replacing any earlier one)."""
    content = canonical_bytes(document)
    public = key.public_key()
    signed = {k: v for k, v in document.items() if k != INTEGRITY}
    signed[INTEGRITY] = {
        "algorithm": ALGORITHM,
        "canonical": CANONICAL,
        "sm3": sm3(content).hex(),
        "signature": key.sign(content).hex(),  # r ‖ s, uid 1234567812345678 (GM/T 0009)
        "uid": DEFAULT_UID.decode(),
        "public_key": public.to_pem(),
        "fingerprint": fingerprint(public),
    }
    return signed


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def der_signature_path(path: Path) -> Path:
    """The same signature in DER, as OpenSSL reads it (``docs/lab-guide.md`` has the command)."""
    return path.with_name(path.name + ".sig.der")


def signature_files(name: str) -> tuple[str, str]:
    return f"{name}.sig", f"{name}.sig.der"


def sign_file(path: Path, key: Sm2PrivateKey) -> Path:
    """Detached signatures of ``path``'s bytes beside it: ``<name>.sig`` (JSON: SM3, the
    signature, key fingerprint) and ``<name>.sig.der`` (DER, for OpenSSL alone)."""
    data = path.read_bytes()
    der_signature_path(path).write_bytes(key.sign_der(data))
    public = key.public_key()
    block = {
        "file": path.name,
        "algorithm": ALGORITHM,
        "sm3": sm3(data).hex(),
        "signature": key.sign(data).hex(),
        "uid": DEFAULT_UID.decode(),
        "fingerprint": fingerprint(public),
    }
    out = signature_path(path)
    out.write_text(json.dumps(block, indent=1) + "\n", "utf-8")
    return out


def verify_file(path: Path, public_key: Sm2PublicKey) -> None:
    """Raise :class:`VerificationError` unless ``path`` has a signature beside it that
    ``public_key`` made over its bytes as they are."""
    sig = signature_path(path)
    try:
        block = json.loads(sig.read_text("utf-8"))
    except FileNotFoundError:
        raise VerificationError(f"{path.name} is not signed: no {sig.name} beside it") from None
    except (OSError, ValueError) as exc:
        raise VerificationError(f"{sig.name} unreadable: {exc}") from None
    data = path.read_bytes()
    if not isinstance(block, Mapping) or block.get("sm3") != sm3(data).hex():
        raise VerificationError(f"{path.name} changed after signing (SM3 differs from {sig.name})")
    try:
        valid = public_key.verify(data, _hex(block, "signature"))
    except SmCryptoError as exc:
        raise VerificationError(f"{sig.name}: signature malformed: {exc}") from None
    der = der_signature_path(path)
    if valid and der.exists():  # what OpenSSL would check must hold as well
        try:
            valid = public_key.verify_der(data, der.read_bytes())
        except SmCryptoError as exc:
            raise VerificationError(f"{der.name}: signature malformed: {exc}") from None
    if not valid:
        raise VerificationError(
            f"{sig.name} does not verify with key {fingerprint(public_key)}: another key signed "
            f"{path.name}, or the signature was altered"
        )


def write(path: Path, document: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", "utf-8")


@dataclass(frozen=True)
class Verified:
    sm3: str
    fingerprint: str
    key_given: bool  # checked against --pubkey, not just the key inside the file
    files_checked: int


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # a repeated key would let an edited value hide behind the one json.loads keeps
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise VerificationError(f"key {k!r} appears twice in one object")
        seen[k] = v
    return seen


def read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise VerificationError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise VerificationError(
            f"{path} is not valid UTF-8 at byte {exc.start}: it was altered or is not results"
        ) from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise VerificationError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(document, dict):
        raise VerificationError(f"{path} does not hold a results object")
    return document


def read_sealed(run_dir: Path) -> dict[str, Any]:
    """A sealed run's results.json, its signature and every file of the run checked: the
    commands that build on a run (rerun, answer, diff, dossier) refuse one edited since."""
    path = run_dir / RESULTS
    try:
        document = read(path)
        verify(document, run_dir=run_dir)
    except VerificationError as exc:
        raise VerificationError(f"{path}: {exc}") from None
    return document


def _hex(block: Mapping[str, Any], name: str) -> bytes:
    try:
        return bytes.fromhex(str(block[name]))
    except (KeyError, ValueError):
        raise VerificationError(f"integrity block: '{name}' missing or not hex") from None


def verify(
    document: Mapping[str, Any],
    *,
    public_key: Sm2PublicKey | None = None,
    run_dir: Path | None = None,
) -> Verified:
    """Raise :class:`VerificationError` unless hash, signature (and evidence files) match."""
    block = document.get(INTEGRITY)
    if not isinstance(block, Mapping):
        raise VerificationError("no integrity block: this results.json was never signed")
    if block.get("algorithm") != ALGORITHM:
        raise VerificationError(f"unknown signature algorithm {block.get('algorithm')!r}")
    content = canonical_bytes(document)
    recorded, actual = _hex(block, "sm3"), sm3(content)
    if recorded != actual:
        raise VerificationError(
            "content changed after signing: its SM3 is "
            f"{actual.hex()}, the file records {recorded.hex()}"
        )
    try:
        embedded = Sm2PublicKey.from_pem(str(block.get("public_key", "")))
    except SmCryptoError as exc:
        raise VerificationError(f"embedded public key unreadable: {exc}") from None
    if public_key is not None and public_key != embedded:
        raise VerificationError(
            f"signed with key {fingerprint(embedded)}, not with the given key "
            f"{fingerprint(public_key)}"
        )
    signature = _hex(block, "signature")
    try:
        valid = (public_key or embedded).verify(content, signature)
    except SmCryptoError as exc:
        raise VerificationError(f"signature malformed: {exc}") from None
    if not valid:
        raise VerificationError(
            f"SM2 signature does not verify with key {fingerprint(embedded)}: the content or "
            "the signature was altered, or the key was swapped"
        )
    checked = 0
    if run_dir is not None:
        checked = _verify_files(document, run_dir)
        for signed in (run_dir / RESULTS, run_dir / REPORT):
            # the results file's own bytes (what OpenSSL checks), and the page a certifier
            # reads: each signed beside it by the same key
            if signed.exists() and (signed.name == REPORT or signature_path(signed).exists()):
                verify_file(signed, public_key or embedded)
                checked += 1
        checked += _verify_dossier(run_dir, public_key or embedded, actual.hex())
    return Verified(actual.hex(), fingerprint(embedded), public_key is not None, checked)


def _verify_dossier(run_dir: Path, key: Sm2PublicKey, results_sm3: str) -> int:
    """The dossier, when one was made: both files signed by the run's key, and the page names
    this run's results (a dossier of another run is refused)."""
    page, pdf = run_dir / DOSSIER_HTML, run_dir / DOSSIER_PDF
    if not (page.exists() or pdf.exists()):
        return 0
    for path in (page, pdf):
        if not path.exists():
            raise VerificationError(f"{path.relative_to(run_dir)} is missing from the dossier")
        verify_file(path, key)
    if results_sm3 not in page.read_text("utf-8", errors="replace"):
        raise VerificationError(f"{DOSSIER_HTML} describes another run (its results SM3 differs)")
    return 2


def _verify_files(document: Mapping[str, Any], run_dir: Path) -> int:
    from bench.report.manifest import sm3_file  # noqa: PLC0415 — only when files are checked

    manifest = document.get("manifest")
    files = manifest.get("files_sm3", {}) if isinstance(manifest, Mapping) else {}
    problems: list[str] = []
    for rel, recorded in sorted(files.items()):
        path = run_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif sm3_file(path) != recorded:
            problems.append(f"{rel}: changed (SM3 differs)")
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; … {len(problems) - 10} more" if problems[10:] else ""
        )
        raise VerificationError(f"{len(problems)} run file(s) do not match: {shown}")
    return len(files)
