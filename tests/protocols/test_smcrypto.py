"""The 国密 facade, specified by the standards' own vectors and by properties.

Vectors and where they come from:

* SM3 — GB/T 32905-2016 appendix A ("abc", "abcd" × 16).
* SM4 — GB/T 32907-2016 appendix A.1 (one block, key = plaintext); SM4-GCM — RFC 8998
  appendix A.1; SM4-CBC — ``openssl enc -sm4-cbc`` (OpenSSL 3.0) on the RFC 8998 plaintext.
* SM2 — GB/T 32918.5-2017 (GM/T 0003.5) appendix A on the recommended curve: the signature of
  "message digest", the encryption of "encryption standard" and the key exchange, each with the
  standard's fixed random scalars; ``Z`` of the signer with ID 1234567812345678.
* HMAC-SM3 — RFC 2104 recomputed here from ``sm3``, and one value from ``openssl mac``.

Interoperability with OpenSSL and the PyPI ``gmssl`` package is in test_smcrypto_interop.py.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import CodecError
from protocols.smcrypto import (
    DEFAULT_UID,
    Sm2KeyExchange,
    Sm2PrivateKey,
    Sm2PublicKey,
    Sm3,
    SmCryptoError,
    ciphertext_from_asn1,
    ciphertext_to_asn1,
    der,
    hmac_sm3,
    hmac_sm3_verify,
    signature_from_der,
    signature_to_der,
    sm3,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from protocols.smcrypto import sm2 as sm2_module
from protocols.smcrypto.sm4 import _sm4_encrypt_block

h = bytes.fromhex

# GB/T 32918.5-2017 appendix A: the key pair used by the signature and encryption examples.
STD_D = h("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
STD_P = h(
    "04"
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
STD_K = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
STD_Z = h("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
STD_SIGNATURE = h(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
STD_CIPHERTEXT = h(  # C1 ‖ C3 ‖ C2 of "encryption standard"
    "04"
    "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "21886CA989CA9C7D58087307CA93092D651EFA"
)
STD_CIPHERTEXT_ASN1 = h(  # the same as OpenSSL's DER SM2Cipher
    "307C"
    "0220" "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "022100" "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "0420" "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "0413" "21886CA989CA9C7D58087307CA93092D651EFA"
)  # fmt: skip

RFC8998_KEY = h("0123456789ABCDEFFEDCBA9876543210")
RFC8998_PLAINTEXT = h(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)

KEY = Sm2PrivateKey.generate()  # one random key for the property tests (generation is slow-ish)
OTHER_KEY = Sm2PrivateKey.generate()


@pytest.fixture
def fixed_scalars(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the next SM2 operations draw the given scalars instead of random ones.

    gmalglib fills its 256-bit word array straight from the 32 random bytes, so on a
    little-endian machine a scalar k must be handed over byte-reversed.
    """
    if sys.byteorder != "little":
        pytest.skip("fixed scalars are fed in gmalglib's little-endian word layout")

    def install(*scalars: str) -> None:
        queue = [h(s)[::-1] for s in scalars]

        def source(size: int) -> bytes:
            assert size == 32
            return queue.pop(0)

        monkeypatch.setattr(sm2_module, "_random_source", source)

    return install


def reason_of(excinfo: pytest.ExceptionInfo[SmCryptoError]) -> str:
    return excinfo.value.reason


# --- errors -----------------------------------------------------------------------------------


def test_smcrypto_error_is_a_codec_error_of_protocol_smcrypto() -> None:
    error = SmCryptoError("bad", reason="key")
    assert isinstance(error, CodecError)
    assert isinstance(error, ValueError)
    assert error.as_dict() == {"protocol": "smcrypto", "reason": "key", "message": "bad"}


# --- SM3 --------------------------------------------------------------------------------------


def test_sm3_of_abc_is_the_standard_example_1() -> None:
    assert sm3(b"abc") == h("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


def test_sm3_of_abcd_sixteen_times_is_the_standard_example_2() -> None:
    assert sm3(b"abcd" * 16) == h(
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


@given(st.lists(st.binary(max_size=200), max_size=8))
def test_streaming_sm3_equals_one_shot_whatever_the_chunking(chunks: list[bytes]) -> None:
    hasher = Sm3()
    for chunk in chunks:
        hasher.update(chunk)
    assert hasher.digest() == sm3(b"".join(chunks))
    assert hasher.digest() == hasher.copy().digest()  # digest() does not end the stream
    assert hasher.hexdigest() == sm3(b"".join(chunks)).hex()


def rfc2104_hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) written out over SM3's 64-byte block: independent of ``hmac_sm3``."""
    if len(key) > 64:
        key = sm3(key)
    key = key.ljust(64, b"\x00")
    inner = sm3(bytes(b ^ 0x36 for b in key) + data)
    return sm3(bytes(b ^ 0x5C for b in key) + inner)


@given(key=st.binary(max_size=150), data=st.binary(max_size=300))
def test_hmac_sm3_is_rfc2104_over_sm3(key: bytes, data: bytes) -> None:
    assert hmac_sm3(key, data) == rfc2104_hmac_sm3(key, data)


def test_hmac_sm3_matches_openssl_mac() -> None:
    # openssl mac -digest SM3 -macopt hexkey:000102 -in <(printf 'hello sm2') HMAC
    assert hmac_sm3(h("000102"), b"hello sm2") == h(
        "fa9b51579e01a0ac1e828ffada5c2f9501a1c914ae5d886157207c9600c8da36"
    )


def test_hmac_sm3_verify_accepts_the_tag_and_rejects_any_other() -> None:
    tag = hmac_sm3(b"k", b"reading")
    assert hmac_sm3_verify(b"k", b"reading", tag)
    assert not hmac_sm3_verify(b"k", b"reading!", tag)
    assert not hmac_sm3_verify(b"k", b"reading", tag[:-1])
    assert not hmac_sm3_verify(b"K", b"reading", tag)


# --- SM4 --------------------------------------------------------------------------------------


def test_sm4_single_block_is_the_standard_example() -> None:
    key = h("0123456789abcdeffedcba9876543210")
    assert _sm4_encrypt_block(key, key) == h("681edf34d206965e86b3e94f536e4246")


def test_sm4_gcm_matches_rfc8998_appendix_a1() -> None:
    nonce = h("00001234567800000000ABCD")
    aad = h("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    sealed = sm4_gcm_encrypt(RFC8998_KEY, RFC8998_PLAINTEXT, aad, nonce=nonce)
    assert sealed == nonce + h(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )
    assert sm4_gcm_decrypt(RFC8998_KEY, sealed, aad) == RFC8998_PLAINTEXT


def test_sm4_cbc_matches_openssl_enc() -> None:
    # openssl enc -sm4-cbc -K 0123456789abcdeffedcba9876543210 -iv 000102030405060708090a0b0c0d0e0f
    iv = h("000102030405060708090a0b0c0d0e0f")
    expected = h(
        "9554bcddf2d371452bffd93df8d461872360664050b1ae28e3e25ab2539ededb"
        "ec17435cee4d9e7c413b774acf6ad121aa16d86ff8e97ed458e1746bfa7bb74c"
        "bf45ec165f8b0fd62a2b84465bca03af"  # the 16 bytes of PKCS#7 padding, encrypted
    )
    assert sm4_cbc_encrypt(RFC8998_KEY, RFC8998_PLAINTEXT, iv=iv) == iv + expected
    assert sm4_cbc_encrypt(RFC8998_KEY, b"carbench", iv=iv) == iv + h(
        "4bddd560e50b44c9ca63ebc7951b0e55"
    )
    assert sm4_cbc_decrypt(RFC8998_KEY, iv + expected) == RFC8998_PLAINTEXT


keys16 = st.binary(min_size=16, max_size=16)


@given(key=keys16, plaintext=st.binary(max_size=300), aad=st.binary(max_size=64))
def test_sm4_gcm_round_trips(key: bytes, plaintext: bytes, aad: bytes) -> None:
    sealed = sm4_gcm_encrypt(key, plaintext, aad)
    assert len(sealed) == 12 + len(plaintext) + 16
    assert sm4_gcm_decrypt(key, sealed, aad) == plaintext


@given(key=keys16, plaintext=st.binary(max_size=300))
def test_sm4_cbc_round_trips(key: bytes, plaintext: bytes) -> None:
    sealed = sm4_cbc_encrypt(key, plaintext)
    assert len(sealed) == 16 + (len(plaintext) // 16 + 1) * 16
    assert sm4_cbc_decrypt(key, sealed) == plaintext


def test_sm4_encryptions_use_a_fresh_random_nonce_or_iv() -> None:
    key = bytes(16)
    assert sm4_gcm_encrypt(key, b"x")[:12] != sm4_gcm_encrypt(key, b"x")[:12]
    assert sm4_cbc_encrypt(key, b"x")[:16] != sm4_cbc_encrypt(key, b"x")[:16]


@given(data=st.data())
def test_sm4_gcm_rejects_any_single_bit_flip(data: st.DataObject) -> None:
    sealed = sm4_gcm_encrypt(RFC8998_KEY, b"CO2 412.5 ppm", b"MN=001")
    index = data.draw(st.integers(0, len(sealed) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    tampered = bytearray(sealed)
    tampered[index] ^= 1 << bit
    with pytest.raises(SmCryptoError) as excinfo:
        sm4_gcm_decrypt(RFC8998_KEY, bytes(tampered), b"MN=001")
    assert reason_of(excinfo) == "tag"


def test_sm4_gcm_rejects_other_associated_data_and_other_key() -> None:
    sealed = sm4_gcm_encrypt(RFC8998_KEY, b"CO2 412.5 ppm", b"MN=001")
    for key, aad in [(RFC8998_KEY, b"MN=002"), (RFC8998_KEY, b""), (bytes(16), b"MN=001")]:
        with pytest.raises(SmCryptoError, match="tag mismatch") as excinfo:
            sm4_gcm_decrypt(key, sealed, aad)
        assert reason_of(excinfo) == "tag"


def test_sm4_cbc_reports_bad_padding() -> None:
    sealed = bytearray(sm4_cbc_encrypt(RFC8998_KEY, bytes(16)))  # iv ‖ data block ‖ pad block
    sealed[31] ^= 0x10 ^ 0x20  # the last padding byte now decrypts to 0x20: impossible
    with pytest.raises(SmCryptoError, match="padding") as excinfo:
        sm4_cbc_decrypt(RFC8998_KEY, bytes(sealed))
    assert reason_of(excinfo) == "padding"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: sm4_gcm_encrypt(bytes(15), b"x"), "key"),
        (lambda: sm4_gcm_encrypt(bytes(16), b"x", nonce=bytes(16)), "length"),
        (lambda: sm4_gcm_decrypt(bytes(16), bytes(27)), "length"),
        (lambda: sm4_gcm_decrypt(bytes(32), bytes(40)), "key"),
        (lambda: sm4_cbc_encrypt(bytes(16), b"x", iv=bytes(12)), "length"),
        (lambda: sm4_cbc_decrypt(bytes(16), bytes(16)), "length"),
        (lambda: sm4_cbc_decrypt(bytes(16), bytes(40)), "length"),
        (lambda: _sm4_encrypt_block(bytes(16), bytes(15)), "length"),
    ],
)
def test_sm4_rejects_wrong_lengths(call: Callable[[], bytes], reason: str) -> None:
    with pytest.raises(SmCryptoError) as excinfo:
        call()
    assert reason_of(excinfo) == reason


# --- SM2: the standard's examples ---------------------------------------------------------------


def test_standard_private_key_gives_the_standard_public_key_and_z() -> None:
    key = Sm2PrivateKey.from_bytes(STD_D)
    assert key.public_key().to_bytes() == STD_P
    assert key.public_key().z_value() == STD_Z
    assert key.public_key().z_value(DEFAULT_UID) == STD_Z
    assert DEFAULT_UID == b"1234567812345678"


def test_sign_with_the_standard_k_gives_the_standard_signature(
    fixed_scalars: Callable[..., None],
) -> None:
    fixed_scalars(STD_K)
    assert Sm2PrivateKey.from_bytes(STD_D).sign(b"message digest") == STD_SIGNATURE


def test_the_standard_signature_verifies_in_raw_and_der_form() -> None:
    public = Sm2PublicKey.from_bytes(STD_P)
    assert public.verify(b"message digest", STD_SIGNATURE)
    as_der = signature_to_der(STD_SIGNATURE)
    # r and s both have the top bit set, so each INTEGER takes a leading zero: 2 + 2×(2+33)
    assert as_der == h("3046022100") + STD_SIGNATURE[:32] + h("022100") + STD_SIGNATURE[32:]
    assert public.verify_der(b"message digest", as_der)
    assert signature_from_der(as_der) == STD_SIGNATURE


def test_the_standard_signature_fails_for_another_message_id_or_key() -> None:
    public = Sm2PublicKey.from_bytes(STD_P)
    assert not public.verify(b"message digesT", STD_SIGNATURE)
    assert not public.verify(b"message digest", STD_SIGNATURE, uid=b"ALICE123@YAHOO.COM")
    assert not KEY.public_key().verify(b"message digest", STD_SIGNATURE)
    flipped = STD_SIGNATURE[:63] + bytes([STD_SIGNATURE[63] ^ 1])
    assert not public.verify(b"message digest", flipped)


def test_encrypt_with_the_standard_k_gives_the_standard_ciphertext(
    fixed_scalars: Callable[..., None],
) -> None:
    fixed_scalars(STD_K)
    ciphertext = Sm2PublicKey.from_bytes(STD_P).encrypt(b"encryption standard")
    assert ciphertext == STD_CIPHERTEXT
    assert ciphertext_to_asn1(ciphertext) == STD_CIPHERTEXT_ASN1
    assert ciphertext_from_asn1(STD_CIPHERTEXT_ASN1) == STD_CIPHERTEXT


def test_encrypt_draws_a_new_k_when_the_kdf_output_is_all_zero(
    fixed_scalars: Callable[..., None],
) -> None:
    # With k = 470 the 1-byte KDF output for the standard key is 00, so GB/T 32918.4 step A5
    # demands a new k (gmalglib alone would return C1 ‖ 0³² ‖ 00, undecryptable).
    fixed_scalars(f"{470:064x}", STD_K)
    ciphertext = Sm2PublicKey.from_bytes(STD_P).encrypt(b"\x01")
    assert ciphertext[:65] == STD_CIPHERTEXT[:65]  # C1 of the second k
    assert Sm2PrivateKey.from_bytes(STD_D).decrypt(ciphertext) == b"\x01"


def test_the_standard_ciphertext_decrypts() -> None:
    key = Sm2PrivateKey.from_bytes(STD_D)
    assert key.decrypt(STD_CIPHERTEXT) == b"encryption standard"


def test_key_exchange_with_the_standard_scalars_gives_the_standard_key(
    fixed_scalars: Callable[..., None],
) -> None:
    alice = Sm2PrivateKey.from_bytes(
        h("81EB26E941BB5AF16DF116495F90695272AE2CD63D6C4AE1678418BE48230029")
    )
    bob = Sm2PrivateKey.from_bytes(
        h("785129917D45A9EA5437A59356B82338EAADDA6CEB199088F14AE10DEFA229B5")
    )
    fixed_scalars(
        "D4DE15474DB74D06491C440D305E012400990F3E390C7E87153C12DB2EA60BB3",  # r_A
        "7E07124814B309489125EAED101113164EBF0F3458C5BD88335C1F9D596243D6",  # r_B
    )
    a_side = Sm2KeyExchange(alice, initiator=True)
    b_side = Sm2KeyExchange(bob, initiator=False)
    assert a_side.ephemeral_public == h(
        "04"
        "64CED1BDBC99D590049B434D0FD73428CF608A5DB8FE5CE07F15026940BAE40E"
        "376629C7AB21E7DB260922499DDB118F07CE8EAAE3E7720AFEF6A5CC062070C0"
    )
    assert b_side.ephemeral_public == h(
        "04"
        "ACC27688A6F7B706098BC91FF3AD1BFF7DC2802CDB14CCCCDB0A90471F9BD707"
        "2FEDAC0494B2FFC4D6853876C79B8F301C6573AD0AA50F39FC87181E1A1B46FE"
    )
    expected = h("6C89347354DE2484C60B4AB1FDE4C6E5")
    assert a_side.derive(bob.public_key(), b_side.ephemeral_public) == expected
    assert b_side.derive(alice.public_key(), a_side.ephemeral_public) == expected


# --- SM2: properties --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(message=st.binary(max_size=300), uid=st.binary(max_size=40) | st.just(DEFAULT_UID))
def test_sign_then_verify_round_trips_for_any_message_and_id(message: bytes, uid: bytes) -> None:
    public = KEY.public_key()
    signature = KEY.sign(message, uid=uid)
    assert len(signature) == 64
    assert public.verify(message, signature, uid=uid)
    assert public.verify_der(message, KEY.sign_der(message, uid=uid), uid=uid)
    assert not public.verify(message + b"\x00", signature, uid=uid)
    assert not public.verify(message, signature, uid=uid + b"\x00")
    assert not OTHER_KEY.public_key().verify(message, signature, uid=uid)


def test_signatures_are_randomised() -> None:
    assert KEY.sign(b"same") != KEY.sign(b"same")


@settings(max_examples=40, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=300))
def test_encrypt_then_decrypt_round_trips(plaintext: bytes) -> None:
    ciphertext = KEY.public_key().encrypt(plaintext)
    assert len(ciphertext) == 65 + 32 + len(plaintext)
    assert ciphertext[0] == 0x04
    assert KEY.decrypt(ciphertext) == plaintext
    assert KEY.decrypt(ciphertext_from_asn1(ciphertext_to_asn1(ciphertext))) == plaintext


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_decrypt_rejects_any_altered_byte(data: st.DataObject) -> None:
    ciphertext = KEY.public_key().encrypt(b"reading 2024-01-01T00:00 CO2=412.5")
    index = data.draw(st.integers(1, len(ciphertext) - 1), label="byte")
    tampered = bytearray(ciphertext)
    tampered[index] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(SmCryptoError) as excinfo:
        KEY.decrypt(bytes(tampered))
    assert reason_of(excinfo) == "decrypt"


def test_decrypt_with_another_key_fails() -> None:
    with pytest.raises(SmCryptoError, match=r"C3|C1") as excinfo:
        OTHER_KEY.decrypt(KEY.public_key().encrypt(b"secret"))
    assert reason_of(excinfo) == "decrypt"


def test_encrypt_refuses_an_empty_plaintext_and_decrypt_a_short_ciphertext() -> None:
    with pytest.raises(SmCryptoError) as excinfo:
        KEY.public_key().encrypt(b"")
    assert reason_of(excinfo) == "length"
    with pytest.raises(SmCryptoError) as excinfo:
        KEY.decrypt(bytes(97))
    assert reason_of(excinfo) == "length"
    compressed_c1 = b"\x02" + bytes(200)
    with pytest.raises(SmCryptoError, match="uncompressed"):
        KEY.decrypt(compressed_c1)


@pytest.mark.parametrize("key_length", [1, 16, 32, 33, 100])
def test_key_exchange_agrees_for_random_keys_ids_and_lengths(key_length: int) -> None:
    a_side = Sm2KeyExchange(KEY, initiator=True, uid=b"terminal-001")
    b_side = Sm2KeyExchange(OTHER_KEY, initiator=False)
    k_a = a_side.derive(OTHER_KEY.public_key(), b_side.ephemeral_public, key_length=key_length)
    k_b = b_side.derive(
        KEY.public_key(), a_side.ephemeral_public, peer_uid=b"terminal-001", key_length=key_length
    )
    assert k_a == k_b
    assert len(k_a) == key_length


def test_key_exchange_disagrees_when_a_party_claims_the_wrong_id_or_role() -> None:
    a_side = Sm2KeyExchange(KEY, initiator=True, uid=b"terminal-001")
    b_side = Sm2KeyExchange(OTHER_KEY, initiator=False)
    k_a = a_side.derive(OTHER_KEY.public_key(), b_side.ephemeral_public)
    k_b = b_side.derive(KEY.public_key(), a_side.ephemeral_public)  # default ID: wrong
    assert k_a != k_b
    c_side = Sm2KeyExchange(KEY, initiator=True)
    d_side = Sm2KeyExchange(OTHER_KEY, initiator=True)  # both think they initiate
    assert c_side.derive(OTHER_KEY.public_key(), d_side.ephemeral_public) != d_side.derive(
        KEY.public_key(), c_side.ephemeral_public
    )


def test_key_exchange_is_single_use_and_checks_the_peer_point() -> None:
    a_side = Sm2KeyExchange(KEY, initiator=True)
    b_side = Sm2KeyExchange(OTHER_KEY, initiator=False)
    with pytest.raises(SmCryptoError, match="not a point") as excinfo:
        a_side.derive(OTHER_KEY.public_key(), b"\x04" + bytes(range(64)))
    assert reason_of(excinfo) == "key"
    with pytest.raises(SmCryptoError) as excinfo:
        a_side.derive(OTHER_KEY.public_key(), b_side.ephemeral_public[:33])
    assert reason_of(excinfo) == "key"
    with pytest.raises(SmCryptoError) as excinfo:
        a_side.derive(OTHER_KEY.public_key(), b_side.ephemeral_public, key_length=0)
    assert reason_of(excinfo) == "length"
    a_side.derive(OTHER_KEY.public_key(), b_side.ephemeral_public)
    with pytest.raises(SmCryptoError, match="already") as excinfo:
        a_side.derive(OTHER_KEY.public_key(), b_side.ephemeral_public)
    assert reason_of(excinfo) == "state"


# --- SM2: malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 63, 65, 72])
def test_verify_raises_for_a_signature_that_is_not_64_bytes(length: int) -> None:
    with pytest.raises(SmCryptoError, match="64 bytes") as excinfo:
        KEY.public_key().verify(b"m", bytes(length))
    assert reason_of(excinfo) == "length"


def test_verify_returns_false_for_out_of_range_r_and_s() -> None:
    public = KEY.public_key()
    n = sm2_module.N.to_bytes(32, "big")
    for signature in [bytes(64), b"\xff" * 64, n + n, bytes(31) + b"\x01" + n]:
        assert not public.verify(b"m", signature)
        assert not public.verify_der(b"m", signature_to_der(signature))


@pytest.mark.parametrize(
    "der_hex",
    [
        "",
        "3000",  # no INTEGERs
        "3003020101",  # one INTEGER
        "30060201010201",  # truncated
        "300602010102010100",  # trailing byte
        "30800201010201010000",  # indefinite length (BER)
        "308106020101020101",  # long-form length for a short length
        "300702020001020101",  # r not minimally encoded
        "3006020181020101",  # r negative
        "3006040101020101",  # OCTET STRING instead of INTEGER
        "3026022101" + "00" * 32 + "020101",  # r is 33 significant bytes
    ],
)
def test_signature_from_der_rejects_malformed_der(der_hex: str) -> None:
    data = h(der_hex)
    with pytest.raises(SmCryptoError) as excinfo:
        signature_from_der(data)
    assert reason_of(excinfo) in {"der", "length"}
    with pytest.raises(SmCryptoError):
        KEY.public_key().verify_der(b"m", data)


def test_signature_to_der_needs_64_bytes() -> None:
    with pytest.raises(SmCryptoError) as excinfo:
        signature_to_der(bytes(63))
    assert reason_of(excinfo) == "length"


def test_small_r_and_s_use_short_integers_in_der() -> None:
    raw = (5).to_bytes(32, "big") + (0x80).to_bytes(32, "big")
    assert signature_to_der(raw) == h("3007020105020200 80".replace(" ", ""))
    assert signature_from_der(signature_to_der(raw)) == raw


def test_ciphertext_from_asn1_checks_the_fields() -> None:
    for bad in [
        der.encode_sequence(der.encode_integer(1), der.encode_integer(2)),
        der.encode_sequence(
            der.encode_integer(1),
            der.encode_integer(2),
            der.encode_octet_string(bytes(31)),
            der.encode_octet_string(b"x"),
        ),
        der.encode_sequence(
            der.encode_integer(1),
            der.encode_integer(2),
            der.encode_octet_string(bytes(32)),
            der.encode_octet_string(b""),
        ),
        der.encode_sequence(
            der.encode_integer(-1),
            der.encode_integer(2),
            der.encode_octet_string(bytes(32)),
            der.encode_octet_string(b"x"),
        ),
    ]:
        with pytest.raises(SmCryptoError):
            ciphertext_from_asn1(bad)


@pytest.mark.parametrize(
    ("secret", "accepted"),
    [
        (bytes(32), False),
        ((1).to_bytes(32, "big"), True),
        ((sm2_module.N - 2).to_bytes(32, "big"), True),
        ((sm2_module.N - 1).to_bytes(32, "big"), False),  # 1 + d must be invertible
        (sm2_module.N.to_bytes(32, "big"), False),
        (b"\xff" * 32, False),
        (bytes(31) + b"\x01", True),
    ],
)
def test_private_key_range_is_1_to_n_minus_2(secret: bytes, accepted: bool) -> None:
    if accepted:
        assert Sm2PrivateKey.from_bytes(secret).to_bytes() == secret
    else:
        with pytest.raises(SmCryptoError, match=re.escape("[1, n − 2]")) as excinfo:
            Sm2PrivateKey.from_bytes(secret)
        assert reason_of(excinfo) == "key"


@pytest.mark.parametrize("length", [0, 31, 33])
def test_private_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(SmCryptoError, match="32 bytes"):
        Sm2PrivateKey.from_bytes(b"\x01" * length)


def test_public_key_forms() -> None:
    point = STD_P
    compressed = bytes([2 + (point[-1] & 1)]) + point[1:33]
    assert Sm2PublicKey.from_bytes(compressed).to_bytes() == point
    for bad in [
        point[:64],
        b"\x06" + point[1:],  # hybrid form: refused although on the curve
        b"\x04" + bytes(64),  # the point at infinity written out
        point[:64] + bytes([point[64] ^ 1]),  # off the curve
        b"\x02" + (2).to_bytes(32, "big"),  # an x with no point on the curve
        b"",
    ]:
        with pytest.raises(SmCryptoError) as excinfo:
            Sm2PublicKey.from_bytes(bad)
        assert reason_of(excinfo) == "key"


def test_uid_longer_than_8191_bytes_is_refused() -> None:
    with pytest.raises(SmCryptoError) as excinfo:
        KEY.sign(b"m", uid=bytes(8192))
    assert reason_of(excinfo) == "uid"
    with pytest.raises(SmCryptoError):
        KEY.public_key().verify(b"m", bytes(64), uid=bytes(8192))
    assert KEY.public_key().verify(b"m", KEY.sign(b"m", uid=bytes(8191)), uid=bytes(8191))


def test_private_key_equality_hash_and_repr_do_not_leak_the_secret() -> None:
    same = Sm2PrivateKey.from_bytes(KEY.to_bytes())
    assert same == KEY
    assert hash(same) == hash(KEY)
    assert same != OTHER_KEY
    assert KEY.to_bytes().hex() not in repr(KEY)
    assert Sm2PublicKey.from_bytes(KEY.public_key().to_bytes()) == KEY.public_key()


# --- keys in PEM / DER ------------------------------------------------------------------------


def test_standard_key_pem_is_pkcs8_with_the_sm2_curve() -> None:
    key = Sm2PrivateKey.from_bytes(STD_D)
    expected_der = (
        h("308187020100301306072a8648ce3d020106082a811ccf5501822d046d306b0201010420")
        + STD_D
        + h("a144034200")
        + STD_P
    )
    assert key.to_der() == expected_der
    pem = key.to_pem()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert pem.endswith("-----END PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    assert Sm2PrivateKey.from_pem(pem) == key
    assert Sm2PrivateKey.from_pem(pem.encode()) == key
    assert Sm2PrivateKey.from_der(expected_der) == key


def test_standard_public_key_pem_is_subject_public_key_info_with_the_sm2_curve() -> None:
    public = Sm2PublicKey.from_bytes(STD_P)
    expected_der = h("3059301306072a8648ce3d020106082a811ccf5501822d034200") + STD_P
    assert public.to_der() == expected_der
    assert public.to_pem().startswith("-----BEGIN PUBLIC KEY-----\n")
    assert Sm2PublicKey.from_pem(public.to_pem()) == public
    assert Sm2PublicKey.from_der(expected_der) == public


def test_pem_tolerates_surrounding_text_crlf_and_other_blocks_first() -> None:
    pem = KEY.to_pem().replace("\n", "\r\n")
    assert Sm2PrivateKey.from_pem("Key for terminal 001\r\n" + pem + "\r\n# end\n") == KEY
    # what `openssl ecparam -genkey -name SM2` writes: the curve, then the key
    parameters = der.pem_encode("SM2 PARAMETERS", der.encode_oid("1.2.156.10197.1.301"))
    both = parameters + KEY.to_pem() + KEY.public_key().to_pem()
    assert Sm2PrivateKey.from_pem(both) == KEY
    assert Sm2PublicKey.from_pem(both) == KEY.public_key()


def test_sec1_ec_private_key_naming_sm2_is_read() -> None:
    point = KEY.public_key().to_bytes()
    sec1 = der.encode_sequence(
        der.encode_integer(1),
        der.encode_octet_string(KEY.to_bytes()),
        der.encode(der.CONTEXT_0, der.encode_oid("1.2.156.10197.1.301")),
        der.encode(der.CONTEXT_1, der.encode_bit_string(point)),
    )
    assert Sm2PrivateKey.from_pem(der.pem_encode("EC PRIVATE KEY", sec1)) == KEY
    assert Sm2PrivateKey.from_der(sec1) == KEY  # as `openssl pkey -outform DER` writes it
    without_curve = der.encode_sequence(
        der.encode_integer(1), der.encode_octet_string(KEY.to_bytes())
    )
    with pytest.raises(SmCryptoError, match="curve"):
        Sm2PrivateKey.from_pem(der.pem_encode("EC PRIVATE KEY", without_curve))


def test_other_curves_and_algorithms_are_refused_with_a_clear_message() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_pem = p256.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SmCryptoError, match=r"not an SM2 key.*1\.2\.840\.10045\.3\.1\.7") as exc:
        Sm2PrivateKey.from_pem(p256_pem)
    assert reason_of(exc) == "key"
    p256_public = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SmCryptoError, match="not an SM2 key"):
        Sm2PublicKey.from_pem(p256_public)
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SmCryptoError, match=r"not an elliptic-curve key.*1\.3\.101\.112"):
        Sm2PrivateKey.from_pem(ed_pem)


def test_pem_labels_and_encrypted_keys() -> None:
    with pytest.raises(SmCryptoError, match="has 'PUBLIC KEY' but no 'PRIVATE KEY'") as excinfo:
        Sm2PrivateKey.from_pem(KEY.public_key().to_pem())
    assert reason_of(excinfo) == "pem"
    with pytest.raises(SmCryptoError, match="has 'PRIVATE KEY' but no 'PUBLIC KEY'"):
        Sm2PublicKey.from_pem(KEY.to_pem())
    encrypted = der.pem_encode("ENCRYPTED PRIVATE KEY", b"\x30\x00")
    with pytest.raises(SmCryptoError, match="encrypted"):
        Sm2PrivateKey.from_pem(encrypted)
    legacy = KEY.to_pem().replace(
        "-----\n", "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: SM4-CBC,00\n\n", 1
    )
    with pytest.raises(SmCryptoError, match="headers"):
        Sm2PrivateKey.from_pem(legacy)
    for text in ["", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n", "é"]:
        with pytest.raises(SmCryptoError):
            Sm2PrivateKey.from_pem(text)
    with pytest.raises(SmCryptoError, match="ASCII"):
        Sm2PrivateKey.from_pem(b"\xff\xfe")
    with pytest.raises(SmCryptoError, match="base64"):
        Sm2PrivateKey.from_pem("-----BEGIN PRIVATE KEY-----\nA*==\n-----END PRIVATE KEY-----\n")


def test_a_stored_public_key_that_does_not_match_is_refused() -> None:
    mixed = der.encode_sequence(
        der.encode_integer(0),
        der.encode_sequence(
            der.encode_oid("1.2.840.10045.2.1"), der.encode_oid("1.2.156.10197.1.301")
        ),
        der.encode_octet_string(
            der.encode_sequence(
                der.encode_integer(1),
                der.encode_octet_string(KEY.to_bytes()),
                der.encode(der.CONTEXT_1, der.encode_bit_string(OTHER_KEY.public_key().to_bytes())),
            )
        ),
    )
    with pytest.raises(SmCryptoError, match="does not belong") as excinfo:
        Sm2PrivateKey.from_der(mixed)
    assert reason_of(excinfo) == "key"


def test_der_oid_round_trip_for_messages() -> None:
    for dotted in ["1.2.156.10197.1.301", "1.2.840.10045.2.1", "2.999.1", "1.3.101.112"]:
        assert der.decode_oid(der.encode_oid(dotted)[2:]) == dotted


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, -1, -128, -129, 2**255, 2**256 - 1])
def test_der_integer_round_trip(value: int) -> None:
    encoded = der.encode_integer(value)
    tag, contents, end = der.read(encoded)
    assert (tag, end) == (der.INTEGER, len(encoded))
    assert der.decode_integer(contents, "x") == value


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 70000])
def test_der_length_round_trip(size: int) -> None:
    encoded = der.encode(der.OCTET_STRING, bytes(size))
    assert der.decode_single(encoded, der.OCTET_STRING, "x") == bytes(size)


# --- fuzz: decoders raise SmCryptoError and nothing else -------------------------------------


DECODERS: list[Callable[[bytes], object]] = [
    Sm2PrivateKey.from_der,
    Sm2PublicKey.from_der,
    Sm2PrivateKey.from_pem,
    Sm2PublicKey.from_pem,
    Sm2PublicKey.from_bytes,
    Sm2PrivateKey.from_bytes,
    signature_from_der,
    ciphertext_from_asn1,
    KEY.decrypt,
    lambda b: KEY.public_key().verify_der(b"m", b),
]


def decode_or_smcrypto_error(decoder: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(SmCryptoError):  # any other exception fails the test
        decoder(data)


@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_random_bytes_raise_only_smcrypto_error(data: bytes) -> None:
    for decoder in DECODERS:
        decode_or_smcrypto_error(decoder, data)


SAMPLES = [
    KEY.to_der(),
    KEY.public_key().to_der(),
    KEY.sign_der(b"m"),
    ciphertext_to_asn1(KEY.public_key().encrypt(b"hello")),
    KEY.to_pem().encode(),
    KEY.public_key().to_pem().encode(),
]


@settings(max_examples=300)
@given(data=st.data())
def test_mutated_encodings_raise_only_smcrypto_error(data: st.DataObject) -> None:
    sample = bytearray(data.draw(st.sampled_from(SAMPLES), label="sample"))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]), label="kind")
        index = data.draw(st.integers(0, max(len(sample) - 1, 0)), label="index")
        if kind == "flip" and sample:
            sample[index] ^= data.draw(st.integers(1, 255), label="xor")
        elif kind == "cut":
            del sample[index:]
        elif kind == "insert":
            sample.insert(index, data.draw(st.integers(0, 255), label="byte"))
        elif sample:
            del sample[index]
    for decoder in DECODERS:
        decode_or_smcrypto_error(decoder, bytes(sample))


@given(text=st.text(max_size=300))
def test_random_text_as_pem_raises_only_smcrypto_error(text: str) -> None:
    for decoder in (Sm2PrivateKey.from_pem, Sm2PublicKey.from_pem):
        for candidate in (text, f"-----BEGIN PRIVATE KEY-----\n{text}\n-----END PRIVATE KEY-----"):
            with contextlib.suppress(SmCryptoError):
                decoder(candidate)
