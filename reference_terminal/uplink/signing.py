"""Signing the records a centre is sent (CSMT §7.4: SM2 signature fingerprints a platform can
verify; CSMT §12.3 tamper-proof data).

A frame is signed when the producer builds it, before it enters the outbox: the signature then
guards the record at rest as well as on the wire, and every resend carries the same one. What
is signed is the record as this centre receives it (its MN, CN and CP), in the canonical form
of :mod:`protocols.hj212.record_signature`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocols.hj212.record_signature import sign_record
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.uplink.frames import Frame


@dataclass(frozen=True, slots=True)
class RecordSigner:
    """Signs one centre's frames with the device key, under the MN that centre knows."""

    key: Sm2PrivateKey
    mn: str
    utc_offset_s: int

    def sign(self, frame: Frame) -> Frame:
        cp = frame.with_signature("").cp(self.utc_offset_s)
        return frame.with_signature(sign_record(self.key, self.mn, frame.cn, cp))

    def sign_all(self, frames: Sequence[Frame]) -> list[Frame]:
        return [self.sign(f) for f in frames]
