"""The SM management channel: SM2-authenticated, SM4-GCM-encrypted, for the terminal's
dedicated management port (ISC-2 §7.4.1.2: 管理端口的通信数据应采用国密算法). Sans-I/O.

Why not TLS: the standard answer would be TLS 1.3 with ``TLS_SM4_GCM_SM3`` (RFC 8998) or TLCP
(GB/T 38636), but the OpenSSL this project runs on (3.0) offers neither suite, nor SM2 in TLS;
Python's ``ssl`` can only use what its OpenSSL has, and the Tongsuo builds that do are not a
dependency a gateway's Python has. So the channel is small and built from the SM primitives the
project already trusts (``protocols.smcrypto``):

1. ClientHello: random, the client's static SM2 key, its ephemeral point.
2. ServerHello: random, ephemeral point, the terminal's device certificate (SM2, issued by the
   PKI, ``identity.certificate_file``), and the server Finished.
3. ClientFinished; then sealed records both ways.

The shared secret is the SM2 key exchange of GB/T 32918.3 (both static keys, both ephemeral
points); HKDF over HMAC-SM3 binds it to the transcript SM3 and gives one SM4 key and IV per
direction and the two Finished keys. The server is authenticated by holding the certificate's
private key (its Finished cannot be made otherwise) and the client checks the certificate
against a CA or a pinned key; the client proves itself by logging in through the channel (or,
if the terminal is given ``client_keys``, by its static key as well).

Records: ``type(1) ‖ version(1) ‖ length(2) ‖ body``; sealed bodies ``seq(8) ‖ SM4-GCM(inner
type ‖ data) ‖ tag(16)`` with the nonce ``IV XOR seq`` and the header and ``seq`` as
authenticated data; a receiver takes only the next sequence number (replay, reordering and
dropping refused) and only a sealed close ends a channel in order. Alerts (in clear, handshake
only) tell the peer why the handshake was refused.

Errors: :class:`ChannelError` and its kinds (:mod:`.errors`); ``protocols.smchannel.client``
is the asyncio client and the httpx transport over it."""

from protocols.smchannel.connection import (
    ClientConnection,
    Closed,
    Data,
    Established,
    Event,
    ServerConnection,
    ServerTrust,
)
from protocols.smchannel.errors import (
    AuthenticationError,
    ChannelError,
    ChannelStateError,
    FramingError,
    HandshakeError,
    PeerAlert,
    ReplayError,
    TamperError,
)

__all__ = [
    "AuthenticationError",
    "ChannelError",
    "ChannelStateError",
    "ClientConnection",
    "Closed",
    "Data",
    "Established",
    "Event",
    "FramingError",
    "HandshakeError",
    "PeerAlert",
    "ReplayError",
    "ServerConnection",
    "ServerTrust",
    "TamperError",
]
