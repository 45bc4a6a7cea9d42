"""How a platform centre answers uploads: acknowledge, late, never, NAK, drop, refuse, bad CRC.

A behaviour is validated data (a YAML file or a scenario step gives it as ``{kind: …}`` or just
the kind's name) and a centre switches to another at run time with ``set_behaviour``. What each
means on the wire, for an upload sent with Flag A=1 (HJ 212-2017 表 3, 9014 answer of §6.6.2):

``ack``
    9014 echoing the upload's QN at once.
``ack_late``
    the same 9014, ``delay_s`` later (by the centre's clock): past OverTime it meets a resend.
``never_ack``
    nothing: the terminal resends ReCount times, then counts the link as down.
``nak``
    9011 with ``QnRtn=qn_rtn`` (default 2, "rejected", 表 7) in place of 9014. The standard gives
    a platform no negative answer to an upload; 9011 is the one answer with a refusal code, and
    what platforms send when they refuse data. A terminal must treat it as "not acknowledged".
``drop``
    the connection is closed when its ``after_frames``-th frame arrives (1: on every frame),
    that frame unanswered; frames before it are acknowledged. ``reset`` sends a TCP RST instead
    of a FIN.
``refuse``
    the centre stops listening (connections are refused: ECONNREFUSED) and closes the ones it
    has; with ``reset`` it accepts and resets each connection at once instead.
``bad_crc``
    the 9014 is sent with a CRC that does not match its data segment (Appendix A).
``server_error`` (HTTPS only)
    HTTP ``status`` (default 503) with a JSON error body.

HJ 212 centres take every kind but ``server_error``; HTTPS receivers every kind but ``nak`` and
``bad_crc`` (:func:`check_for`). Notifications (1013 → 9013) and the answers a terminal gives to
commands are not governed by the behaviour: the session answers those as the standard says.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, field_validator

from protocols.hj212.codes import QnRtn


class _Kind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Acknowledge(_Kind):
    kind: Literal["ack"] = "ack"


class AcknowledgeLate(_Kind):
    kind: Literal["ack_late"] = "ack_late"
    delay_s: float = Field(gt=0, le=86_400)


class NeverAcknowledge(_Kind):
    kind: Literal["never_ack"] = "never_ack"


class Nak(_Kind):
    kind: Literal["nak"] = "nak"
    qn_rtn: int = Field(int(QnRtn.REJECTED), ge=0, le=999)

    @field_validator("qn_rtn")
    @classmethod
    def _not_ready(cls, value: int) -> int:
        if value == QnRtn.READY:
            raise ValueError("QnRtn=1 means 'ready' (表 7): a NAK needs a refusal code")
        return value


class DropConnection(_Kind):
    kind: Literal["drop"] = "drop"
    after_frames: int = Field(1, ge=1)
    reset: bool = False


class RefuseConnections(_Kind):
    kind: Literal["refuse"] = "refuse"
    reset: bool = False


class BadCrc(_Kind):
    kind: Literal["bad_crc"] = "bad_crc"


class ServerError(_Kind):
    kind: Literal["server_error"] = "server_error"
    status: int = Field(503, ge=500, le=599)


def _from_name(value: Any) -> Any:
    # ``behaviour: never_ack`` in a YAML file is short for ``behaviour: {kind: never_ack}``.
    return {"kind": value} if isinstance(value, str) else value


Behaviour = Annotated[
    Acknowledge
    | AcknowledgeLate
    | NeverAcknowledge
    | Nak
    | DropConnection
    | RefuseConnections
    | BadCrc
    | ServerError,
    Field(discriminator="kind"),
    BeforeValidator(_from_name),
]

HJ212_KINDS: Final = frozenset({"ack", "ack_late", "never_ack", "nak", "drop", "refuse", "bad_crc"})
HTTPS_KINDS: Final = frozenset({"ack", "ack_late", "never_ack", "drop", "refuse", "server_error"})

_ADAPTER: TypeAdapter[Behaviour] = TypeAdapter(Behaviour)


class BehaviourError(ValueError):
    """A behaviour that does not apply to the centre's transport."""


def parse_behaviour(value: Any) -> Behaviour:
    """A behaviour from a kind's name, a mapping (``{"kind": "ack_late", "delay_s": 30}``) or
    a behaviour object."""
    return _ADAPTER.validate_python(value)


def check_for(protocol: Literal["hj212", "https"], behaviour: Behaviour) -> Behaviour:
    kinds = HJ212_KINDS if protocol == "hj212" else HTTPS_KINDS
    if behaviour.kind not in kinds:
        raise BehaviourError(
            f"behaviour {behaviour.kind!r} does not apply to an {protocol} centre "
            f"(it takes {', '.join(sorted(kinds))})"
        )
    return behaviour
