"""What goes wrong on the SM management channel, one class per kind, each naming its clause."""

from __future__ import annotations

from protocols.errors import CodecError

#: The clause the channel exists for.
MANAGEMENT_PORT = (
    "ISC-2 §7.4.1.2: 应设置专用的管理端口, 管理端口的通信数据应采用国密算法 "
    "(a dedicated management port whose traffic uses SM algorithms)"
)


class ChannelError(CodecError):
    """Anything that ends a channel connection. ``reason`` is also the alert code the side
    that found it sends its peer during the handshake."""

    protocol = "smchannel"
    reason = "channel"


class FramingError(ChannelError):
    """Bytes that are not a record: unknown type or version, a length out of bounds."""

    reason = "framing"


class HandshakeError(ChannelError):
    """A handshake message out of order, malformed, or with a point off the SM2 curve."""

    reason = "handshake"


class AuthenticationError(ChannelError):
    """The peer did not prove who it is: a certificate the trust anchor did not issue, another
    key than the pinned one, a Finished that does not verify (the peer lacks the private key
    its certificate names), or a client key the terminal does not know."""

    reason = "authentication"


class TamperError(ChannelError):
    """A sealed record whose SM4-GCM tag does not verify: altered on the way, or sealed under
    another key."""

    reason = "tamper"


class ReplayError(ChannelError):
    """A sealed record whose sequence number is not the next one: replayed, reordered or
    dropped on the way."""

    reason = "replay"


class PeerAlert(ChannelError):
    """The peer ended the handshake with an alert; ``reason`` is its code, the message its text."""

    reason = "alert"


class ChannelStateError(ChannelError):
    """Data sent before the handshake finished or after the channel closed."""

    reason = "state"
