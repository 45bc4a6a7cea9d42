"""Platform centres as validated data: one model per transport, and the ``platform up`` file.

A YAML file (``fixtures/platforms/two-centres.yaml``) holds ``record`` (an SQLAlchemy URL for
the record of frames; default SQLite in memory) and ``centres``, each ``protocol: hj212`` or
``protocol: https``. Errors name the field (pydantic's location) and, from the loader, the file.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common import yaml_input
from protocols.hj212.editions import EDITIONS, Edition
from simulators.platform.behaviour import Acknowledge, Behaviour, check_for

CentreName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Centre(_Strict):
    name: CentreName
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0: a free port, announced when listening
    #: MN → PW of the terminals this centre accepts; ``any`` accepts every MN and PW.
    passwords: dict[str, str] | Literal["any"] = "any"
    behaviour: Behaviour = Acknowledge()
    #: The centre's local time offset (hours east of UTC): QNs it makes, times it sets.
    utc_offset_h: float = Field(8.0, ge=-14, le=14)

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.utc_offset_h))

    def password_problem(self, mn: str, pw: str) -> str | None:
        """Why a frame with this MN and PW is refused, or None (HJ 212-2017 表 3: PW, MN)."""
        if self.passwords == "any":
            return None
        expected = self.passwords.get(mn)
        if expected is None:
            return f"MN {mn} is not registered with centre {self.name}"
        if pw != expected:
            return f"PW for MN {mn} does not match centre {self.name}'s"
        return None


class SignatureTrust(_Strict):
    """Checking every record's SM2 signature (CSMT §7.4) against device certificates issued by
    one CA (ISC-2 §7.4.1); see :mod:`.signatures`."""

    #: The CA certificate (PEM) device certificates must be issued by.
    ca_file: Path
    #: MN → the device certificate (PEM) of the terminal using that MN; more can be given at
    #: run time (``centre.trust_device``).
    devices: dict[str, Path] = {}


class Hj212Centre(_Centre):
    """An HJ 212 data centre: terminals connect over TCP and upload; it acknowledges and asks."""

    protocol: Literal["hj212"] = "hj212"
    edition: Literal["2005", "2017", "2025"] = "2017"
    #: OverTime (s) and ReCount the centre uses for its own requests (表 4; 1–99).
    over_time: float = Field(10.0, gt=0, le=99)
    re_count: int = Field(3, ge=1, le=99)
    backlog: int = Field(4096, ge=1)  # listen() queue: 1 000 terminals may dial at once
    #: Check records' SM2 signatures; None: not checked (the record's ``signature`` is null).
    signatures: SignatureTrust | None = None

    @property
    def hj212_edition(self) -> Edition:
        return EDITIONS[self.edition]

    @model_validator(mode="after")
    def _behaviour_fits(self) -> Hj212Centre:
        check_for("hj212", self.behaviour)
        return self


class ClientCertificates(_Strict):
    """Mutual TLS (ISC-2 §7.4.1): every connection must present a client certificate issued
    by one CA (:mod:`.client_tls`)."""

    #: The CA certificate (PEM) client certificates must chain to.
    ca_file: Path


class HttpsCentre(_Centre):
    """An HTTPS JSON receiver (ISC-2 §7.2.3(6)): the body is :mod:`.https_schema`'s."""

    protocol: Literal["https"] = "https"
    #: Require a client certificate of this CA; None: any client may connect (TLS one way).
    client_certificates: ClientCertificates | None = None
    path: str = Field("/hj212/upload", pattern=r"^/[A-Za-z0-9_./-]*$")
    #: Where the centre publishes its emission-factor library for download (CSMT §11.4);
    #: see :mod:`.factor_library`.
    factors_path: str = Field("/methodology/factors", pattern=r"^/[A-Za-z0-9_./-]*$")

    @model_validator(mode="after")
    def _paths_differ(self) -> HttpsCentre:
        if self.factors_path == self.path:
            raise ValueError("factors_path: the library cannot be published on the upload path")
        return self

    @model_validator(mode="after")
    def _behaviour_fits(self) -> HttpsCentre:
        check_for("https", self.behaviour)
        return self


Centre = Annotated[Hj212Centre | HttpsCentre, Field(discriminator="protocol")]


class PlatformFile(_Strict):
    """What ``carbench platform up`` serves."""

    #: SQLAlchemy URL of the record (``sqlite:///reports/platform.sqlite``,
    #: ``postgresql+psycopg://user@127.0.0.1/test``); default SQLite in memory.
    record: str = "sqlite://"
    centres: list[Centre] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PlatformFile:
        names = [c.name for c in self.centres]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"centre names must be unique: {', '.join(twice)} appear twice")
        ports = [c.port for c in self.centres if c.port]
        if len(ports) != len(set(ports)):
            raise ValueError("two centres cannot listen on the same port")
        return self


class PlatformFileError(ValueError):
    """A platform file that does not validate; the message names the file and the fields."""


def load_platform_file(path: Path) -> PlatformFile:
    try:
        data = yaml_input.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PlatformFileError(yaml_input.where(str(path), exc)) from None
    except OSError as exc:
        raise PlatformFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return PlatformFile.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise PlatformFileError("\n".join(lines)) from None
