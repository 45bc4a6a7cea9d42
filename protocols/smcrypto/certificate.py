"""SM2 certificates (ISC-2 §7.4.1 PKI): X.509 v3 signed with SM2-with-SM3, issued and checked.

Why real X.509 and not a home-made form: the strict DER subset of :mod:`.der` already writes
and reads every structure a small certificate needs, and an X.509 certificate is what a
platform's PKI (and ``openssl x509``/``openssl verify``) reads. ``cryptography`` parses X.509
but cannot check an SM2 signature or load an SM2 key, and ``gmssl``/``gmalglib`` have no
certificate support, so the bench writes and checks them here.

The form, exactly (RFC 5280 with GM/T 0015's algorithm identifiers)::

    Certificate ::= SEQUENCE { tbsCertificate, SEQUENCE { OID sm2-with-sm3 }, BIT STRING sig }
    tbsCertificate ::= SEQUENCE {
        [0] EXPLICIT INTEGER 2,                        -- v3
        INTEGER serialNumber,                          -- positive, at most 20 bytes
        SEQUENCE { OID sm2-with-sm3 1.2.156.10197.1.501 },   -- no parameters, as OpenSSL
        Name issuer, SEQUENCE { Time notBefore, Time notAfter }, Name subject,
        SubjectPublicKeyInfo,                          -- id-ecPublicKey, curve sm2
        [3] EXPLICIT SEQUENCE { Extension ... } }      -- basicConstraints, keyUsage (critical)
    Name ::= SEQUENCE { SET { SEQUENCE { OID, UTF8String } } ... }   -- one attribute per RDN
    Time ::= UTCTime (years 1950-2049) | GeneralizedTime, in UTC with seconds and "Z"

The signature is DER ``SEQUENCE { r, s }`` over the DER of ``tbsCertificate`` with the SM2
user ID ``1234567812345678`` (GM/T 0015 for certificates). OpenSSL 3.0 defaults to the
*empty* ID: ``openssl verify -vfyopt distid:1234567812345678 -CAfile ca.pem device.pem``
accepts these certificates (the trust anchor's own signature is not checked unless
``-check_ss_sig``, which ignores ``-vfyopt``); ``openssl x509 -req`` issues ones this module
accepts when given ``-sigopt distid:1234567812345678``.

Reading accepts what this module writes and the plain certificates OpenSSL makes for SM2 keys:
extensions other than basicConstraints and keyUsage are skipped unless marked critical (then
refused, RFC 5280 §4.2). Errors raise :class:`CertificateError` (``reason="certificate"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from protocols.smcrypto import der
from protocols.smcrypto.errors import SmCryptoError
from protocols.smcrypto.sm2 import DEFAULT_UID, Sm2PrivateKey, Sm2PublicKey

OID_SM2_WITH_SM3 = "1.2.156.10197.1.501"
OID_COMMON_NAME = "2.5.4.3"
OID_ORGANIZATION = "2.5.4.10"
OID_BASIC_CONSTRAINTS = "2.5.29.19"
OID_KEY_USAGE = "2.5.29.15"
PEM_CERTIFICATE = "CERTIFICATE"
#: The SM2 user ID certificate signatures are made and checked with (GM/T 0015).
CERTIFICATE_UID = DEFAULT_UID

BOOLEAN = 0x01
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SET = 0x31
CONTEXT_3 = 0xA3

#: keyUsage bits (RFC 5280 §4.2.1.3), as the BIT STRING's first octet.
KEY_USAGE_DIGITAL_SIGNATURE = 0x80
KEY_USAGE_KEY_CERT_SIGN = 0x04
KEY_USAGE_CRL_SIGN = 0x02

_SM2_WITH_SM3 = der.encode_oid(OID_SM2_WITH_SM3)
_ALGORITHM = der.encode_sequence(_SM2_WITH_SM3)
_ATTRIBUTE_NAMES = {OID_COMMON_NAME: "CN", OID_ORGANIZATION: "O"}
_ATTRIBUTE_OIDS = {name: oid for oid, name in _ATTRIBUTE_NAMES.items()}


class CertificateError(SmCryptoError):
    """A certificate that cannot be read, or that does not pass a check (ISC-2 §7.4.1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="certificate")


@dataclass(frozen=True, slots=True)
class Certificate:
    """One SM2 X.509 v3 certificate: the fields it carries and its DER encoding.

    ``subject``/``issuer`` are ``(("CN", "…"), ("O", "…"))`` pairs in RDN order; times are
    naive UTC; ``is_ca`` is basicConstraints' cA; ``key_usage`` the first keyUsage octet,
    None when absent."""

    serial: int
    issuer: tuple[tuple[str, str], ...]
    subject: tuple[tuple[str, str], ...]
    not_before: datetime
    not_after: datetime
    public_key: Sm2PublicKey
    is_ca: bool
    key_usage: int | None
    tbs: bytes  # the DER of tbsCertificate: what the signature covers
    signature: bytes  # DER SEQUENCE { r, s }
    der: bytes

    # ---- reading -------------------------------------------------------------------------
    @classmethod
    def from_der(cls, data: bytes) -> Certificate:
        return _parse(bytes(data))

    @classmethod
    def from_pem(cls, text: str | bytes) -> Certificate:
        _, data = der.pem_decode(text, (PEM_CERTIFICATE,))
        return cls.from_der(data)

    def to_pem(self) -> str:
        return der.pem_encode(PEM_CERTIFICATE, self.der)

    def name(self, field: str = "CN") -> str | None:
        """The subject's first ``field`` (``CN``, ``O``), or None."""
        return next((value for key, value in self.subject if key == field), None)

    # ---- checking ------------------------------------------------------------------------
    def signed_by(self, issuer_key: Sm2PublicKey) -> bool:
        """Whether ``issuer_key`` made this certificate's signature (never raises)."""
        try:
            return issuer_key.verify_der(self.tbs, self.signature, uid=CERTIFICATE_UID)
        except SmCryptoError:
            return False

    def check_issued_by(self, issuer: Certificate, at: datetime) -> None:
        """Raise unless ``issuer`` (a CA certificate) issued this one and both are valid at
        ``at``: the chain a platform checks before trusting a device key (ISC-2 §7.4.1)."""
        if not issuer.is_ca:
            raise CertificateError(
                f"issuer {_show(issuer.subject)} is not a CA (basicConstraints cA is false): "
                "ISC-2 §7.4.1 asks for certificates of a PKI"
            )
        if issuer.key_usage is not None and not issuer.key_usage & KEY_USAGE_KEY_CERT_SIGN:
            raise CertificateError(f"issuer {_show(issuer.subject)} may not sign certificates")
        if self.issuer != issuer.subject:
            raise CertificateError(
                f"certificate of {_show(self.subject)} names issuer {_show(self.issuer)}, "
                f"not {_show(issuer.subject)}"
            )
        if not self.signed_by(issuer.public_key):
            raise CertificateError(
                f"certificate of {_show(self.subject)}: its SM2-with-SM3 signature does not "
                f"verify with the key of {_show(issuer.subject)} (forged or altered)"
            )
        issuer.check_valid_at(at)
        self.check_valid_at(at)

    def check_valid_at(self, at: datetime) -> None:
        if not self.not_before <= at <= self.not_after:
            raise CertificateError(
                f"certificate of {_show(self.subject)} is valid {self.not_before:%Y-%m-%d %H:%M:%S}"
                f" to {self.not_after:%Y-%m-%d %H:%M:%S} UTC, not at {at:%Y-%m-%d %H:%M:%S}"
            )


def issue(
    *,
    issuer_key: Sm2PrivateKey,
    issuer: tuple[tuple[str, str], ...],
    subject: tuple[tuple[str, str], ...],
    public_key: Sm2PublicKey,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool = False,
    serial: int | None = None,
) -> Certificate:
    """A certificate for ``public_key`` signed by ``issuer_key`` (self-signed: the same key
    and ``issuer == subject``). CA certificates may sign certificates and CRLs; others may
    only make digital signatures (the device signing its records)."""
    if not_after <= not_before:
        raise CertificateError("not_after must be later than not_before")
    serial = int.from_bytes(os.urandom(16), "big") >> 1 if serial is None else serial
    if not 0 < serial < 1 << 159:
        raise CertificateError("serial must be positive and at most 20 bytes (RFC 5280 §4.1.2.2)")
    usage = KEY_USAGE_KEY_CERT_SIGN | KEY_USAGE_CRL_SIGN if is_ca else KEY_USAGE_DIGITAL_SIGNATURE
    extensions = der.encode_sequence(
        _extension(OID_BASIC_CONSTRAINTS, _basic_constraints(is_ca)),
        _extension(OID_KEY_USAGE, _key_usage(usage)),
    )
    tbs = der.encode_sequence(
        der.encode(der.CONTEXT_0, der.encode_integer(2)),
        der.encode_integer(serial),
        _ALGORITHM,
        _encode_name(issuer),
        der.encode_sequence(_encode_time(not_before), _encode_time(not_after)),
        _encode_name(subject),
        public_key.to_der(),
        der.encode(CONTEXT_3, extensions),
    )
    signature = issuer_key.sign_der(tbs, uid=CERTIFICATE_UID)
    return Certificate.from_der(
        der.encode_sequence(tbs, _ALGORITHM, der.encode_bit_string(signature))
    )


# ---- encoding ----------------------------------------------------------------------------------


def _encode_name(name: tuple[tuple[str, str], ...]) -> bytes:
    rdns = []
    for key, value in name:
        oid = _ATTRIBUTE_OIDS.get(key)
        if oid is None:
            raise CertificateError(f"name attribute {key!r}: only CN and O are written")
        attribute = der.encode_sequence(
            der.encode_oid(oid), der.encode(UTF8_STRING, value.encode("utf-8"))
        )
        rdns.append(der.encode(SET, attribute))
    return der.encode_sequence(*rdns)


def _encode_time(moment: datetime) -> bytes:
    moment = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    if 1950 <= moment.year <= 2049:  # RFC 5280 §4.1.2.5: UTCTime until 2049
        return der.encode(UTC_TIME, moment.strftime("%y%m%d%H%M%SZ").encode())
    return der.encode(GENERALIZED_TIME, moment.strftime("%Y%m%d%H%M%SZ").encode())


def _extension(oid: str, value: bytes) -> bytes:
    critical = der.encode(BOOLEAN, b"\xff")
    return der.encode_sequence(der.encode_oid(oid), critical, der.encode_octet_string(value))


def _basic_constraints(is_ca: bool) -> bytes:
    return der.encode_sequence(der.encode(BOOLEAN, b"\xff")) if is_ca else der.encode_sequence()


def _key_usage(bits: int) -> bytes:
    unused = (bits & -bits).bit_length() - 1  # trailing zero bits of the single octet
    return der.encode(der.BIT_STRING, bytes([unused, bits]))


# ---- decoding ----------------------------------------------------------------------------------


def _fail(message: str) -> CertificateError:
    return CertificateError(f"not an SM2 certificate this bench reads: {message}")


def _parse(data: bytes) -> Certificate:
    try:
        top = der.decode_sequence(data, "Certificate")
        if len(top) != 3:
            raise _fail(f"Certificate has {len(top)} fields, expected 3")
        tbs_contents = der.expect(top[0], der.SEQUENCE, "tbsCertificate")
        tbs = der.encode(der.SEQUENCE, tbs_contents)
        _check_algorithm(top[1], "signatureAlgorithm")
        signature = der.decode_bit_string(top[2], "signatureValue")
        fields = der.read_all(tbs_contents)
        if fields and fields[0][0] != der.CONTEXT_0:
            fields.insert(0, (der.CONTEXT_0, der.encode_integer(0)))  # v1: version omitted
        if len(fields) < 7:
            raise _fail(f"tbsCertificate has {len(fields)} fields, expected at least 7")
        version = der.decode_single(fields[0][1], der.INTEGER, "version")
        if version not in (b"\x00", b"\x02"):
            raise _fail("only X.509 v1 and v3 are read (version must be 0 or 2)")
        serial = der.decode_unsigned(fields[1], "serialNumber", max_bytes=20)
        _check_algorithm(fields[2], "signature")
        issuer = _decode_name(fields[3])
        validity = der.read_all(der.expect(fields[4], der.SEQUENCE, "validity"))
        if len(validity) != 2:
            raise _fail("validity must hold notBefore and notAfter")
        not_before, not_after = (_decode_time(t) for t in validity)
        subject = _decode_name(fields[5])
        public_key = Sm2PublicKey.from_der(der.encode(*fields[6]))
        is_ca, key_usage = False, None
        for tag, contents in fields[7:]:
            if tag == CONTEXT_3:
                is_ca, key_usage = _decode_extensions(contents)
            elif tag not in (0x81, 0x82):  # issuer/subject unique IDs: ignored
                raise _fail(f"unexpected tbsCertificate field with tag 0x{tag:02x}")
    except CertificateError:
        raise
    except SmCryptoError as exc:
        raise _fail(str(exc)) from None
    return Certificate(
        serial=serial,
        issuer=issuer,
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        public_key=public_key,
        is_ca=is_ca,
        key_usage=key_usage,
        tbs=tbs,
        signature=signature,
        der=data,
    )


def _check_algorithm(element: der.Element, what: str) -> None:
    fields = der.read_all(der.expect(element, der.SEQUENCE, what))
    oid = der.expect(fields[0], der.OID, what) if fields else b""
    if oid != _SM2_WITH_SM3[2:] or any(f != (der.NULL, b"") for f in fields[1:]):
        raise _fail(f"{what} is {der.decode_oid(oid)}, expected SM2-with-SM3 {OID_SM2_WITH_SM3}")


def _decode_name(element: der.Element) -> tuple[tuple[str, str], ...]:
    name = []
    for rdn in der.read_all(der.expect(element, der.SEQUENCE, "Name")):
        for attribute in der.read_all(der.expect(rdn, SET, "RelativeDistinguishedName")):
            pair = der.read_all(der.expect(attribute, der.SEQUENCE, "AttributeTypeAndValue"))
            if len(pair) != 2:
                raise _fail("AttributeTypeAndValue must hold a type and a value")
            oid = der.decode_oid(der.expect(pair[0], der.OID, "attribute type"))
            tag, value = pair[1]
            if tag not in (UTF8_STRING, PRINTABLE_STRING):
                raise _fail(f"attribute {oid}: only UTF8String and PrintableString are read")
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise _fail(f"attribute {oid} is not UTF-8") from None
            name.append((_ATTRIBUTE_NAMES.get(oid, oid), text))
    return tuple(name)


def _decode_time(element: der.Element) -> datetime:
    tag, contents = element
    formats = {UTC_TIME: "%y%m%d%H%M%SZ", GENERALIZED_TIME: "%Y%m%d%H%M%SZ"}
    if tag not in formats:
        raise _fail(f"a validity time has tag 0x{tag:02x}, not UTCTime or GeneralizedTime")
    try:
        moment = datetime.strptime(contents.decode("ascii"), formats[tag])
    except (UnicodeDecodeError, ValueError):
        raise _fail(f"validity time {contents!r} is not YYMMDDhhmmssZ / YYYYMMDDhhmmssZ") from None
    if tag == UTC_TIME and moment.year >= 2050:  # RFC 5280: YY ≥ 50 means 19YY
        moment = moment.replace(year=moment.year - 100)
    return moment


def _decode_extensions(contents: bytes) -> tuple[bool, int | None]:
    is_ca, key_usage = False, None
    for extension in der.decode_sequence(contents, "extensions"):
        parts = der.read_all(der.expect(extension, der.SEQUENCE, "Extension"))
        if len(parts) not in (2, 3):
            raise _fail("an Extension must hold an OID, optionally critical, and a value")
        oid = der.decode_oid(der.expect(parts[0], der.OID, "extnID"))
        critical = len(parts) == 3 and parts[1] == (BOOLEAN, b"\xff")
        value = der.expect(parts[-1], der.OCTET_STRING, "extnValue")
        if oid == OID_BASIC_CONSTRAINTS:
            inner = der.decode_sequence(value, "basicConstraints")
            is_ca = bool(inner) and inner[0] == (BOOLEAN, b"\xff")
        elif oid == OID_KEY_USAGE:
            bits = der.decode_single(value, der.BIT_STRING, "keyUsage")
            key_usage = bits[1] if len(bits) > 1 else 0
        elif critical:
            raise _fail(f"critical extension {oid} is not understood (RFC 5280 §4.2)")
    return is_ca, key_usage


def _show(name: tuple[tuple[str, str], ...]) -> str:
    return "/" + "/".join(f"{k}={v}" for k, v in name) if name else "(empty name)"
