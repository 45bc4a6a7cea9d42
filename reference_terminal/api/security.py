"""Who may do what through the management API: the seam the security issue fills in.

**Today every request is allowed**, as :data:`ANONYMOUS`. Every route already declares the
:class:`Action` it performs through ``Depends(authorize(action))``, so the security work
(ISC-2 §7.4.1.1 user ids, passwords, lockout, idle timeout; §7.4.1.2 the three roles with least
privilege and the admin source-address restriction; §7.4.1.3 audit; SSEA §5.5.3 a password for
every control operation) replaces two functions here and touches no route:

- :func:`current_principal` — authentication: who is calling (session, certificate …);
  raise ``ApiError(401, …)`` when nobody is;
- :func:`permits` — authorization: whether that principal's roles allow the action.

``app.dependency_overrides[current_principal] = …`` also works (tests, a gateway that puts the
API behind its own authenticating proxy). The SM-protected management channel (ISC-2 §7.4.1.2,
§7.4.2) is a transport matter: the server that runs the app terminates it, not this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request

from reference_terminal.api.errors import ApiError


class Action(StrEnum):
    """What a route does, coarse enough to map onto the three roles of ISC-2 §7.4.1.2."""

    READ = "read"  # status, configuration, data, events, export
    CONFIGURE = "configure"  # replace the configuration
    OPERATE = "operate"  # manual entry, CSV import, on-command reads
    BACKUP = "backup"  # a copy of all the data leaves the terminal
    PUSH = "push"  # a collector pushing readings to the intake (a device, not a person)


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    roles: frozenset[str] = frozenset()


ANONYMOUS = Principal("anonymous")


async def current_principal(request: Request) -> Principal:
    """Who is calling. Not authenticated yet: everybody is :data:`ANONYMOUS`."""
    return ANONYMOUS


def permits(principal: Principal, action: Action) -> bool:
    """Whether ``principal`` may perform ``action``. Not enforced yet: always true."""
    return True


def authorize(action: Action) -> Callable[..., Awaitable[Principal]]:
    """The dependency a route performing ``action`` declares; gives the caller's principal."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not permits(principal, action):
            raise ApiError(403, "forbidden", f"{principal.user} may not {action.value}")
        return principal

    dependency.__name__ = f"authorize_{action.value}"
    return dependency


# What a route's parameter list says: ``_: CanRead`` (the caller's principal, once allowed).
CanRead = Annotated[Principal, Depends(authorize(Action.READ))]
CanConfigure = Annotated[Principal, Depends(authorize(Action.CONFIGURE))]
CanOperate = Annotated[Principal, Depends(authorize(Action.OPERATE))]
CanBackup = Annotated[Principal, Depends(authorize(Action.BACKUP))]
