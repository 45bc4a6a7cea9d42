"""SM2 keys in the DER/PEM containers OpenSSL 3 reads and writes.

* Private key: PKCS#8 ``PrivateKeyInfo`` (PEM label ``PRIVATE KEY``)::

      SEQUENCE { INTEGER 0,
                 SEQUENCE { OID id-ecPublicKey 1.2.840.10045.2.1, OID sm2 1.2.156.10197.1.301 },
                 OCTET STRING { ECPrivateKey } }
      ECPrivateKey ::= SEQUENCE { INTEGER 1, OCTET STRING d (32 bytes),
                                  [0] OID sm2 OPTIONAL, [1] BIT STRING 04‖x‖y OPTIONAL }

  We write exactly what ``openssl genpkey -algorithm SM2`` writes (no [0], with [1]); we read
  that, and also a bare SEC1 ``ECPrivateKey`` whose [0] names the sm2 curve (PEM label
  ``EC PRIVATE KEY``, or DER as ``openssl pkey -outform DER`` writes it).
* Public key: X.509 ``SubjectPublicKeyInfo`` (PEM label ``PUBLIC KEY``)::

      SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID sm2 }, BIT STRING 04‖x‖y }

These functions move raw bytes in and out of the containers; the key classes in
:mod:`protocols.smcrypto.sm2` check that the numbers are a valid SM2 key.
"""

from __future__ import annotations

from protocols.smcrypto import der
from protocols.smcrypto.errors import SmCryptoError

OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_SM2 = "1.2.156.10197.1.301"

_EC_PUBLIC_KEY = der.encode_oid(OID_EC_PUBLIC_KEY)
_SM2 = der.encode_oid(OID_SM2)
_ALGORITHM = der.encode_sequence(_EC_PUBLIC_KEY, _SM2)

PEM_PRIVATE = "PRIVATE KEY"
PEM_PUBLIC = "PUBLIC KEY"
PEM_SEC1 = "EC PRIVATE KEY"
PEM_ENCRYPTED = "ENCRYPTED PRIVATE KEY"

SECRET_SIZE = 32


def _key_error(message: str) -> SmCryptoError:
    return SmCryptoError(message, reason="key")


def _check_algorithm(element: der.Element) -> None:
    fields = der.read_all(der.expect(element, der.SEQUENCE, "AlgorithmIdentifier"))
    if not fields:
        raise SmCryptoError("AlgorithmIdentifier: empty", reason="der")
    algorithm = der.expect(fields[0], der.OID, "AlgorithmIdentifier algorithm")
    if algorithm != _EC_PUBLIC_KEY[2:]:
        raise _key_error(
            f"not an elliptic-curve key: algorithm OID {der.decode_oid(algorithm)}, "
            f"expected id-ecPublicKey {OID_EC_PUBLIC_KEY} with the sm2 curve"
        )
    if len(fields) != 2 or fields[1][0] != der.OID:
        raise _key_error(
            "EC key parameters must be the named curve sm2 "
            f"({OID_SM2}); explicit or absent curve parameters are not supported"
        )
    _check_curve(fields[1][1])


def _check_curve(curve: bytes) -> None:
    if curve != _SM2[2:]:
        raise _key_error(
            f"not an SM2 key: named curve {der.decode_oid(curve)}, expected sm2 {OID_SM2}"
        )


# --- private keys -----------------------------------------------------------------------------


def encode_private_der(secret: bytes, public_point: bytes) -> bytes:
    """PKCS#8 DER of a 32-byte secret and its 65-byte uncompressed public point."""
    ec_private_key = der.encode_sequence(
        der.encode_integer(1),
        der.encode_octet_string(secret),
        der.encode(der.CONTEXT_1, der.encode_bit_string(public_point)),
    )
    return der.encode_sequence(
        der.encode_integer(0), _ALGORITHM, der.encode_octet_string(ec_private_key)
    )


def _decode_ec_private_key(data: bytes, *, require_curve: bool) -> tuple[bytes, bytes | None]:
    fields = der.decode_sequence(data, "ECPrivateKey")
    if len(fields) < 2:
        raise SmCryptoError("ECPrivateKey: needs a version and a private key", reason="der")
    version = der.decode_integer(
        der.expect(fields[0], der.INTEGER, "ECPrivateKey version"), "ECPrivateKey version"
    )
    if version != 1:
        raise SmCryptoError(f"ECPrivateKey version must be 1, found {version}", reason="der")
    secret = der.expect(fields[1], der.OCTET_STRING, "ECPrivateKey privateKey")
    if not 1 <= len(secret) <= SECRET_SIZE:
        raise _key_error(f"SM2 private key must be at most 32 bytes, found {len(secret)}")
    secret = secret.rjust(SECRET_SIZE, b"\x00")
    curve_seen = False
    public_point: bytes | None = None
    for tag, contents in fields[2:]:
        if tag == der.CONTEXT_0 and not curve_seen and public_point is None:
            _check_curve(der.decode_single(contents, der.OID, "ECPrivateKey parameters"))
            curve_seen = True
        elif tag == der.CONTEXT_1 and public_point is None:
            (bit_string,) = _exactly_one(contents, "ECPrivateKey publicKey")
            public_point = der.decode_bit_string(bit_string, "ECPrivateKey publicKey")
        else:
            raise SmCryptoError(
                f"ECPrivateKey: unexpected or repeated field with tag 0x{tag:02x}", reason="der"
            )
    if require_curve and not curve_seen:
        raise _key_error("EC PRIVATE KEY does not name its curve; expected [0] sm2")
    return secret, public_point


def _exactly_one(contents: bytes, what: str) -> list[der.Element]:
    elements = der.read_all(contents)
    if len(elements) != 1:
        raise SmCryptoError(f"{what}: expected one element, found {len(elements)}", reason="der")
    return elements


def decode_private_der(data: bytes) -> tuple[bytes, bytes | None]:
    """``(32-byte secret, public point or None)`` from PKCS#8 or SEC1 DER.

    Both occur: ``openssl pkey -outform DER`` writes SEC1 (``INTEGER 1, OCTET STRING d, …``)
    for SM2 keys, while PEM output and ``openssl pkcs8 -topk8`` are PKCS#8 (``INTEGER 0, …``).
    """
    fields = der.decode_sequence(data, "PrivateKeyInfo")
    if (
        len(fields) >= 2
        and fields[0] == (der.INTEGER, b"\x01")
        and fields[1][0] == der.OCTET_STRING
    ):
        return _decode_ec_private_key(data, require_curve=True)
    if len(fields) not in (3, 4):
        raise SmCryptoError(
            f"PrivateKeyInfo: expected 3 or 4 fields, found {len(fields)}", reason="der"
        )
    version = der.decode_integer(
        der.expect(fields[0], der.INTEGER, "PrivateKeyInfo version"), "PrivateKeyInfo version"
    )
    if version != 0:
        raise SmCryptoError(f"PrivateKeyInfo version must be 0, found {version}", reason="der")
    _check_algorithm(fields[1])
    inner = der.expect(fields[2], der.OCTET_STRING, "PrivateKeyInfo privateKey")
    if len(fields) == 4 and fields[3][0] != der.CONTEXT_0:  # [0] attributes are ignored
        raise SmCryptoError("PrivateKeyInfo: unexpected trailing field", reason="der")
    return _decode_ec_private_key(inner, require_curve=False)


def decode_private_pem(text: str | bytes) -> tuple[bytes, bytes | None]:
    label, data = der.pem_decode(text, (PEM_PRIVATE, PEM_SEC1, PEM_ENCRYPTED))
    if label == PEM_ENCRYPTED:
        raise SmCryptoError(
            "encrypted PKCS#8 private keys are not supported; decrypt it first "
            "(openssl pkey -in key.pem -out plain.pem)",
            reason="pem",
        )
    if label == PEM_SEC1:
        return _decode_ec_private_key(data, require_curve=True)
    return decode_private_der(data)


# --- public keys ------------------------------------------------------------------------------


def encode_public_der(public_point: bytes) -> bytes:
    """SubjectPublicKeyInfo DER of a 65-byte uncompressed point."""
    return der.encode_sequence(_ALGORITHM, der.encode_bit_string(public_point))


def decode_public_der(data: bytes) -> bytes:
    """The encoded point (as stored: normally 04‖x‖y) from SubjectPublicKeyInfo DER."""
    fields = der.decode_sequence(data, "SubjectPublicKeyInfo")
    if len(fields) != 2:
        raise SmCryptoError(
            f"SubjectPublicKeyInfo: expected 2 fields, found {len(fields)}", reason="der"
        )
    _check_algorithm(fields[0])
    return der.decode_bit_string(fields[1], "SubjectPublicKeyInfo subjectPublicKey")


def decode_public_pem(text: str | bytes) -> bytes:
    _, data = der.pem_decode(text, (PEM_PUBLIC,))
    return decode_public_der(data)
