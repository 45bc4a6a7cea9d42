"""The SM management channel as a specification: the handshake authenticates the terminal by
its certificate (CA or pinned key), every record is sealed, and a tampered, replayed,
reordered or foreign record ends the connection with its own error. Hypothesis feeds the
record parser and both ends garbage: only ``ChannelError`` comes out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.smchannel import (
    AuthenticationError,
    ChannelError,
    ChannelStateError,
    ClientConnection,
    Closed,
    Data,
    Established,
    FramingError,
    HandshakeError,
    PeerAlert,
    ReplayError,
    ServerConnection,
    ServerTrust,
    TamperError,
)
from protocols.smchannel.handshake import ServerHello
from protocols.smchannel.records import HEADER_SIZE, MAX_PLAINTEXT, RecordReader, RecordType
from protocols.smcrypto import Sm2PrivateKey
from protocols.smcrypto.certificate import Certificate
from simulators.pki.authority import TestCa


@dataclass(frozen=True)
class Pki:
    ca: TestCa
    key: Sm2PrivateKey
    certificate: Certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = TestCa.create(Path(tmp_path_factory.mktemp("ca")))
    key = Sm2PrivateKey.generate()
    return Pki(ca, key, ca.issue_device(key.public_key(), subject="terminal-1"))


def pair(pki: Pki, **client: object) -> tuple[ClientConnection, ServerConnection]:
    trust = client.pop("trust", ServerTrust(ca=pki.ca.certificate, subject="terminal-1"))
    assert isinstance(trust, ServerTrust)
    return ClientConnection(trust, **client), ServerConnection(pki.key, pki.certificate)  # type: ignore[arg-type]


def handshake(client: ClientConnection, server: ServerConnection) -> None:
    client.start()
    assert server.receive_data(client.data_to_send()) == []
    (event,) = client.receive_data(server.data_to_send())
    assert isinstance(event, Established)
    (event,) = server.receive_data(client.data_to_send())
    assert isinstance(event, Established)


def test_handshake_then_data_both_ways_and_an_orderly_close(pki: Pki) -> None:
    client, server = pair(pki)
    handshake(client, server)
    assert client.established and server.established
    client.send(b"GET /health HTTP/1.1\r\n\r\n")
    wire = client.data_to_send()
    assert b"health" not in wire  # sealed, not in clear
    assert server.receive_data(wire) == [Data(b"GET /health HTTP/1.1\r\n\r\n")]
    answer = bytes(range(256)) * 200  # more than one record
    server.send(answer)
    events = client.receive_data(server.data_to_send())
    assert b"".join(e.data for e in events if isinstance(e, Data)) == answer
    assert len(events) == -(-len(answer) // MAX_PLAINTEXT)
    server.close()
    assert client.receive_data(server.data_to_send()) == [Closed()]
    assert client.closed


def test_records_arrive_byte_by_byte(pki: Pki) -> None:
    client, server = pair(pki)
    client.start()
    for byte in client.data_to_send():
        assert server.receive_data(bytes((byte,))) == []
    events = [e for b in server.data_to_send() for e in client.receive_data(bytes((b,)))]
    assert [type(e) for e in events] == [Established]


def test_pinned_key_accepted_and_another_refused(pki: Pki) -> None:
    client, server = pair(pki, trust=ServerTrust(public_key=pki.key.public_key()))
    handshake(client, server)
    other = Sm2PrivateKey.generate().public_key()
    client, server = pair(pki, trust=ServerTrust(public_key=other))
    client.start()
    server.receive_data(client.data_to_send())
    with pytest.raises(AuthenticationError, match="another key than the pinned"):
        client.receive_data(server.data_to_send())
    # the client told the terminal why, in an alert
    with pytest.raises(PeerAlert, match="pinned") as refused:
        server.receive_data(client.data_to_send())
    assert refused.value.reason == "authentication"


def test_certificate_of_another_ca_refused(pki: Pki, tmp_path: Path) -> None:
    other = TestCa.create(tmp_path / "other")
    client, server = pair(pki, trust=ServerTrust(ca=other.certificate))
    client.start()
    server.receive_data(client.data_to_send())
    with pytest.raises(AuthenticationError, match=r"does not verify|names issuer"):
        client.receive_data(server.data_to_send())


def test_wrong_subject_and_expired_certificate_refused(pki: Pki) -> None:
    client, server = pair(pki, trust=ServerTrust(ca=pki.ca.certificate, subject="terminal-2"))
    client.start()
    server.receive_data(client.data_to_send())
    with pytest.raises(AuthenticationError, match="terminal-2"):
        client.receive_data(server.data_to_send())
    late = pki.certificate.not_after + timedelta(days=1)
    client, server = pair(pki, now=lambda: late)
    client.start()
    server.receive_data(client.data_to_send())
    with pytest.raises(AuthenticationError, match="valid"):
        client.receive_data(server.data_to_send())


def test_an_impostor_with_the_certificate_but_not_the_key_is_refused(pki: Pki) -> None:
    """A certificate is public: a server presenting the terminal's certificate without its
    private key cannot make the server Finished."""
    stolen = Sm2PrivateKey.generate()
    client = ClientConnection(ServerTrust(ca=pki.ca.certificate))
    impostor = ServerConnection(stolen, pki.ca.issue_device(stolen.public_key(), subject="x"))
    client.start()
    impostor.receive_data(client.data_to_send())
    own = ServerHello.parse(impostor.data_to_send()[HEADER_SIZE:])
    # the impostor swaps in the real terminal's (public) certificate
    forged = ServerHello(own.random, own.ephemeral, pki.certificate.der, own.finished)
    reply = forged.record().encode()
    with pytest.raises(AuthenticationError, match="no private key for its certificate"):
        client.receive_data(reply)


def test_a_client_with_a_wrong_finished_is_refused(pki: Pki) -> None:
    client, server = pair(pki)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    finished = bytearray(client.data_to_send())
    finished[-1] ^= 1
    with pytest.raises(AuthenticationError, match="client's Finished"):
        server.receive_data(bytes(finished))
    assert server.closed
    # the alert the terminal queued says why
    with pytest.raises(PeerAlert, match="Finished"):
        client.receive_data(server.data_to_send())


def test_only_listed_client_keys_get_in(pki: Pki) -> None:
    known = Sm2PrivateKey.generate()
    server = ServerConnection(pki.key, pki.certificate, client_keys=frozenset({known.public_key()}))
    client = ClientConnection(ServerTrust(ca=pki.ca.certificate), key=known)
    handshake(client, server)
    server = ServerConnection(pki.key, pki.certificate, client_keys=frozenset({known.public_key()}))
    stranger = ClientConnection(ServerTrust(ca=pki.ca.certificate))
    stranger.start()
    with pytest.raises(AuthenticationError, match="not one this terminal knows"):
        server.receive_data(stranger.data_to_send())


@pytest.mark.parametrize("where", ["version", "length", "seq", "ciphertext", "tag"])
def test_a_tampered_record_is_detected(pki: Pki, where: str) -> None:
    client, server = pair(pki)
    handshake(client, server)
    client.send(b"POST /config HTTP/1.1\r\n\r\n")
    record = bytearray(client.data_to_send())
    if where == "length":  # one byte shorter: the body no longer authenticates
        record[3] -= 1
    else:
        at = {"version": 1, "seq": HEADER_SIZE + 7, "ciphertext": HEADER_SIZE + 10, "tag": -1}
        record[at[where]] ^= 0x01
    with pytest.raises((TamperError, ReplayError, FramingError)):
        server.receive_data(bytes(record))
    assert server.closed
    with pytest.raises(ChannelStateError):
        server.receive_data(b"")


def test_a_flipped_ciphertext_bit_is_a_tamper_error(pki: Pki) -> None:
    client, server = pair(pki)
    handshake(client, server)
    client.send(b"x" * 100)
    record = bytearray(client.data_to_send())
    record[HEADER_SIZE + 20] ^= 0x80
    with pytest.raises(TamperError, match="does not authenticate"):
        server.receive_data(bytes(record))


def test_a_replayed_record_is_refused(pki: Pki) -> None:
    client, server = pair(pki)
    handshake(client, server)
    client.send(b"POST /uplink/backfill HTTP/1.1\r\n\r\n")
    record = client.data_to_send()
    assert server.receive_data(record) == [Data(b"POST /uplink/backfill HTTP/1.1\r\n\r\n")]
    with pytest.raises(ReplayError, match="record number 0 replayed"):
        server.receive_data(record)


def test_a_dropped_record_is_noticed(pki: Pki) -> None:
    client, server = pair(pki)
    handshake(client, server)
    client.send(b"first")
    client.data_to_send()  # lost on the way
    client.send(b"second")
    with pytest.raises(ReplayError, match="arrived early"):
        server.receive_data(client.data_to_send())


def test_a_record_of_another_session_is_refused(pki: Pki) -> None:
    """Replayed into a new connection: the keys differ (fresh ephemeral points)."""
    client, server = pair(pki)
    handshake(client, server)
    client.send(b"GET / HTTP/1.1\r\n\r\n")
    record = client.data_to_send()
    client2, server2 = pair(pki)
    handshake(client2, server2)
    with pytest.raises(TamperError):
        server2.receive_data(record)


def test_a_record_reflected_back_is_refused(pki: Pki) -> None:
    """Each direction has its own key: the client's record sent back to it does not open."""
    client, server = pair(pki)
    handshake(client, server)
    client.send(b"hello")
    with pytest.raises(TamperError):
        client.receive_data(client.data_to_send())


def test_plain_http_on_the_channel_port_is_refused_with_an_alert(pki: Pki) -> None:
    server = ServerConnection(pki.key, pki.certificate)
    with pytest.raises(FramingError, match="plain HTTP or TLS"):
        server.receive_data(b"GET /config HTTP/1.1\r\nHost: x\r\n\r\n")
    alert = server.data_to_send()
    assert alert[0] == RecordType.ALERT


def test_out_of_order_and_oversized_messages(pki: Pki) -> None:
    server = ServerConnection(pki.key, pki.certificate)
    with pytest.raises(HandshakeError, match="CLIENT_FINISHED while"):
        server.receive_data(bytes((RecordType.CLIENT_FINISHED, 1, 0, 32)) + bytes(32))
    server = ServerConnection(pki.key, pki.certificate)
    with pytest.raises(FramingError, match="at most"):
        server.receive_data(bytes((RecordType.SEALED, 1, 0xFF, 0xFF)))
    server = ServerConnection(pki.key, pki.certificate)
    with pytest.raises(HandshakeError, match="before the handshake"):
        server.receive_data(bytes((RecordType.SEALED, 1, 0, 30)) + bytes(30))
    client, server = pair(pki)
    with pytest.raises(ChannelStateError):
        client.send(b"too early")


def test_a_point_off_the_curve_is_refused(pki: Pki) -> None:
    client = ClientConnection(ServerTrust(ca=pki.ca.certificate))
    client.start()
    hello = bytearray(client.data_to_send())
    hello[-1] ^= 1  # the ephemeral point's y
    server = ServerConnection(pki.key, pki.certificate)
    with pytest.raises(HandshakeError, match="not a point on the SM2 curve"):
        server.receive_data(bytes(hello))


# ---- fuzzing ----------------------------------------------------------------------------------

records = st.builds(
    lambda kind, version, body: bytes((kind, version)) + len(body).to_bytes(2, "big") + body,
    st.sampled_from([*RecordType, 0x00, 0x16, 0xFF]),
    st.sampled_from([1, 1, 1, 0, 2]),
    st.binary(max_size=300),
)
streams = st.one_of(st.binary(max_size=600), st.lists(records, max_size=4).map(b"".join))


@given(streams, st.integers(min_value=1, max_value=64))
def test_fuzz_record_reader_raises_only_framing_errors(data: bytes, chunk: int) -> None:
    reader = RecordReader()
    try:
        for at in range(0, len(data), chunk):
            for record in reader.feed(data[at : at + chunk]):
                assert record.encode() in data
    except FramingError:
        pass


FUZZ_CA = TestCa.create(Path(__import__("tempfile").mkdtemp(prefix="smchannel-fuzz-")))
FUZZ_KEY = Sm2PrivateKey.generate()
FUZZ_CERT = FUZZ_CA.issue_device(FUZZ_KEY.public_key(), subject="fuzz")


@given(streams)
def test_fuzz_the_terminal_end_raises_only_channel_errors(data: bytes) -> None:
    server = ServerConnection(FUZZ_KEY, FUZZ_CERT)
    try:
        server.receive_data(data)
    except ChannelError:
        assert server.closed


@given(streams)
def test_fuzz_the_client_end_raises_only_channel_errors(data: bytes) -> None:
    client = ClientConnection(ServerTrust(ca=FUZZ_CA.certificate))
    client.start()
    try:
        client.receive_data(data)
    except ChannelError:
        assert client.closed


@given(streams)
def test_fuzz_after_the_handshake_raises_only_channel_errors(data: bytes) -> None:
    client = ClientConnection(ServerTrust(ca=FUZZ_CA.certificate))
    server = ServerConnection(FUZZ_KEY, FUZZ_CERT)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    try:
        events = server.receive_data(data)
    except ChannelError:
        return
    assert not [e for e in events if isinstance(e, Data)]  # nothing forged gets through


def test_trust_needs_an_anchor() -> None:
    with pytest.raises(ValueError, match="CA certificate or a pinned"):
        ServerTrust()
