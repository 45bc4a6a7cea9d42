"""The 国密 facade against independent peers: the OpenSSL 3 command line and PyPI ``gmssl``.

OpenSSL facts these tests pin down (OpenSSL 3.0):

* SM2 signatures need ``distid:1234567812345678`` (``-pkeyopt`` for ``pkeyutl``, ``-sigopt``
  for ``dgst``): OpenSSL's default ID is the *empty* string, not GM/T 0009's.
* ``pkeyutl -sign/-verify`` must be given ``-rawin -digest sm3`` to hash ``Z ‖ M`` itself.
* SM2 ciphertexts are DER ``SEQUENCE { x, y, C3, C2 }``; there is no SM4-GCM in ``openssl enc``.

``gmssl`` is only a peer here: it draws nonces from ``random`` and must never sign for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from protocols.smcrypto import (
    DEFAULT_UID,
    Sm2PrivateKey,
    Sm2PublicKey,
    ciphertext_from_asn1,
    ciphertext_to_asn1,
    hmac_sm3,
    sm3,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
)

OPENSSL = shutil.which("openssl")
KEY = Sm2PrivateKey.generate()
MESSAGE = b"##0285QN=20240101000000000;ST=22;CN=2011;PW=123456;MN=CARBENCH0001;CP=&&CO2-Rtd=412.5&&"
DISTID = "distid:" + DEFAULT_UID.decode()


def _openssl_has_sm2() -> bool:
    if OPENSSL is None:
        return False
    listing = subprocess.run(
        [OPENSSL, "list", "-public-key-algorithms"], capture_output=True, text=True, check=False
    )
    return "SM2" in listing.stdout


needs_openssl = pytest.mark.skipif(
    not _openssl_has_sm2(), reason="needs the openssl 3 command line with SM2 (not found)"
)


def openssl(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *map(str, args)], input=stdin, capture_output=True, check=False, timeout=30
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "key.pem").write_text(KEY.to_pem())
    (tmp_path / "pub.pem").write_text(KEY.public_key().to_pem())
    (tmp_path / "msg").write_bytes(MESSAGE)
    return tmp_path


# --- keys -------------------------------------------------------------------------------------


@needs_openssl
def test_openssl_reads_our_keys_and_writes_them_back_byte_for_byte(files: Path) -> None:
    result = openssl("pkey", "-in", files / "key.pem")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == KEY.to_pem()
    result = openssl("pkey", "-in", files / "key.pem", "-pubout")
    assert result.stdout.decode() == KEY.public_key().to_pem()
    result = openssl("pkey", "-pubin", "-in", files / "pub.pem")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == KEY.public_key().to_pem()
    text = openssl("pkey", "-in", files / "key.pem", "-text", "-noout").stdout.decode()
    assert "ASN1 OID: SM2" in text
    assert KEY.to_bytes().hex(":") in text.replace("\n", "").replace(" ", "")


@needs_openssl
def test_we_read_the_key_openssl_ecparam_genkey_writes_after_its_parameters() -> None:
    made = openssl("ecparam", "-genkey", "-name", "SM2")
    assert made.returncode == 0, made.stderr
    assert b"-----BEGIN SM2 PARAMETERS-----" in made.stdout
    key = Sm2PrivateKey.from_pem(made.stdout)
    assert key.to_pem().encode() in made.stdout


@needs_openssl
def test_we_read_keys_made_by_openssl_genpkey(tmp_path: Path) -> None:
    made = openssl("genpkey", "-algorithm", "SM2")
    assert made.returncode == 0, made.stderr
    key = Sm2PrivateKey.from_pem(made.stdout)
    assert key.to_pem().encode() == made.stdout
    public = openssl("pkey", "-pubout", stdin=made.stdout).stdout
    assert Sm2PublicKey.from_pem(public) == key.public_key()
    assert key.public_key().to_pem().encode() == public
    sec1_der = openssl("pkey", "-outform", "DER", stdin=made.stdout).stdout
    assert sec1_der[:5] == bytes.fromhex("3077020101")  # SEC1 ECPrivateKey, not PKCS#8
    assert Sm2PrivateKey.from_der(sec1_der) == key
    pkcs8_der = openssl("pkcs8", "-topk8", "-nocrypt", "-outform", "DER", stdin=made.stdout).stdout
    assert pkcs8_der == key.to_der()
    assert Sm2PrivateKey.from_der(pkcs8_der) == key


# --- signatures -------------------------------------------------------------------------------


@needs_openssl
def test_openssl_pkeyutl_verifies_our_der_signature(files: Path) -> None:
    (files / "sig").write_bytes(KEY.sign_der(MESSAGE))
    verify: list[str | Path] = ["pkeyutl", "-verify", "-pubin", "-inkey", files / "pub.pem"]
    verify += ["-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-sigfile", files / "sig"]
    result = openssl(*verify, "-in", files / "msg")
    assert result.returncode == 0, result.stderr
    assert b"Signature Verified Successfully" in result.stdout
    (files / "other").write_bytes(MESSAGE + b"!")
    assert openssl(*verify, "-in", files / "other").returncode != 0


@needs_openssl
def test_openssl_dgst_verifies_our_der_signature(files: Path) -> None:
    (files / "sig").write_bytes(KEY.sign_der(MESSAGE))
    result = openssl(
        "dgst", "-sm3", "-verify", files / "pub.pem", "-sigopt", DISTID,
        "-signature", files / "sig", files / "msg",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"Verified OK" in result.stdout


@needs_openssl
def test_we_verify_signatures_made_by_openssl(files: Path) -> None:
    by_dgst = openssl(
        "dgst", "-sm3", "-sign", files / "key.pem", "-sigopt", DISTID, files / "msg"
    ).stdout
    by_pkeyutl = openssl(
        "pkeyutl", "-sign", "-inkey", files / "key.pem", "-rawin", "-digest", "sm3",
        "-pkeyopt", DISTID, "-in", files / "msg",
    ).stdout  # fmt: skip
    public = KEY.public_key()
    for signature in (by_dgst, by_pkeyutl):
        assert signature[0] == 0x30
        assert public.verify_der(MESSAGE, signature)
        assert not public.verify_der(MESSAGE + b"!", signature)


@needs_openssl
def test_user_ids_other_than_the_default_agree_with_openssl_hexdistid(files: Path) -> None:
    uid = "终端-0001".encode()
    hexdistid = "hexdistid:" + uid.hex()
    (files / "sig").write_bytes(KEY.sign_der(MESSAGE, uid=uid))
    result = openssl(
        "dgst", "-sm3", "-verify", files / "pub.pem", "-sigopt", hexdistid,
        "-signature", files / "sig", files / "msg",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    theirs = openssl(
        "dgst", "-sm3", "-sign", files / "key.pem", "-sigopt", hexdistid, files / "msg"
    ).stdout
    assert KEY.public_key().verify_der(MESSAGE, theirs, uid=uid)
    assert not KEY.public_key().verify_der(MESSAGE, theirs)


@needs_openssl
def test_openssl_without_distid_signs_with_the_empty_id(files: Path) -> None:
    signature = openssl("dgst", "-sm3", "-sign", files / "key.pem", files / "msg").stdout
    assert KEY.public_key().verify_der(MESSAGE, signature, uid=b"")
    assert not KEY.public_key().verify_der(MESSAGE, signature)  # not 1234567812345678


# --- encryption -------------------------------------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("size", [1, 19, 1000])
def test_openssl_decrypts_our_ciphertext_in_asn1_form(files: Path, size: int) -> None:
    plaintext = os.urandom(size)
    (files / "ct").write_bytes(ciphertext_to_asn1(KEY.public_key().encrypt(plaintext)))
    result = openssl("pkeyutl", "-decrypt", "-inkey", files / "key.pem", "-in", files / "ct")
    assert result.returncode == 0, result.stderr
    assert result.stdout == plaintext


@needs_openssl
@pytest.mark.parametrize("size", [1, 19, 1000])
def test_we_decrypt_openssl_ciphertext(files: Path, size: int) -> None:
    plaintext = os.urandom(size)
    (files / "pt").write_bytes(plaintext)
    result = openssl(
        "pkeyutl", "-encrypt", "-pubin", "-inkey", files / "pub.pem", "-in", files / "pt"
    )
    assert result.returncode == 0, result.stderr
    assert KEY.decrypt(ciphertext_from_asn1(result.stdout)) == plaintext


# --- SM3, HMAC-SM3, SM4-CBC -------------------------------------------------------------------


@needs_openssl
def test_sm3_and_hmac_sm3_agree_with_openssl(files: Path) -> None:
    data = os.urandom(5000)
    (files / "data").write_bytes(data)
    digest = openssl("dgst", "-sm3", "-binary", files / "data").stdout
    assert sm3(data) == digest
    for key in (os.urandom(16), os.urandom(100), b""):
        args: list[str | Path] = ["mac", "-digest", "SM3", "-in", files / "data"]
        if key:
            args += ["-macopt", "hexkey:" + key.hex()]
        result = openssl(*args, "HMAC")
        if not key and result.returncode != 0:
            continue  # some OpenSSL builds refuse an HMAC without a key
        assert result.returncode == 0, result.stderr
        assert hmac_sm3(key, data) == bytes.fromhex(result.stdout.decode().strip())


@needs_openssl
@pytest.mark.parametrize("size", [0, 15, 16, 1000])
def test_sm4_cbc_agrees_with_openssl_enc(files: Path, size: int) -> None:
    key, iv, plaintext = os.urandom(16), os.urandom(16), os.urandom(size)
    (files / "pt").write_bytes(plaintext)
    enc = ["enc", "-sm4-cbc", "-K", key.hex(), "-iv", iv.hex()]
    theirs = openssl(*enc, "-in", files / "pt")
    assert theirs.returncode == 0, theirs.stderr
    assert sm4_cbc_encrypt(key, plaintext, iv=iv) == iv + theirs.stdout
    (files / "ct").write_bytes(sm4_cbc_encrypt(key, plaintext, iv=iv)[16:])
    back = openssl(*enc, "-d", "-in", files / "ct")
    assert back.returncode == 0, back.stderr
    assert back.stdout == plaintext
    assert sm4_cbc_decrypt(key, iv + theirs.stdout) == plaintext


# --- gmssl (PyPI) as a peer -------------------------------------------------------------------


def gmssl_peer(key: Sm2PrivateKey, *, asn1: bool = False) -> Any:
    """A ``gmssl`` SM2 object: hex strings, public key as x‖y without the 04, mode 1 = C1C3C2.

    Its constructor strips a leading "04" with ``str.lstrip("04")``, which also eats any
    leading '0' or '4' digits of x; the public key is therefore set after construction.
    """
    sm2 = pytest.importorskip("gmssl.sm2")
    xy = key.public_key().to_bytes()[1:].hex()
    peer = sm2.CryptSM2(private_key=key.to_bytes().hex(), public_key=xy, mode=1, asn1=asn1)
    peer.public_key = xy
    return peer


def test_gmssl_verifies_our_signatures() -> None:
    peer = gmssl_peer(KEY)
    for message in (MESSAGE, b"", os.urandom(100)):
        signature = KEY.sign(message)
        assert peer.verify_with_sm3(signature.hex(), message)
        assert not peer.verify_with_sm3(signature.hex(), message + b"!")


def test_we_verify_gmssl_signatures_raw_and_der() -> None:
    for asn1 in (False, True):
        peer = gmssl_peer(KEY, asn1=asn1)
        signature = bytes.fromhex(peer.sign_with_sm3(MESSAGE))
        if asn1:
            assert KEY.public_key().verify_der(MESSAGE, signature)
        else:
            assert KEY.public_key().verify(MESSAGE, signature)


def test_gmssl_decrypts_our_ciphertext() -> None:
    peer = gmssl_peer(KEY)
    for plaintext in (b"x", MESSAGE, os.urandom(300)):
        ciphertext = KEY.public_key().encrypt(plaintext)
        assert peer.decrypt(ciphertext[1:]) == plaintext  # C1 without the 04


def test_we_decrypt_gmssl_ciphertext() -> None:
    peer = gmssl_peer(KEY)
    for plaintext in (b"x", MESSAGE, os.urandom(300)):
        ciphertext = peer.encrypt(plaintext)
        assert KEY.decrypt(b"\x04" + ciphertext) == plaintext
