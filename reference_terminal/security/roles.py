"""The three roles of ISC-2 §7.4.1.2(1) and what each may do, with least privilege.

「应具有系统管理员、安全操作员和安全审计员三种角色账户，并根据各账号角色分配其任务所需的
最小权限」. Every management API route declares one :class:`Action`; :data:`PERMISSIONS` says
which role may perform it. Separation of duties decides the split:

============== ============= ================= =========
action         administrator security_operator auditor
============== ============= ================= =========
read           yes           yes               –
configure      yes           –                 –
operate        –             yes               –
backup         yes           –                 –
manage_users   yes           –                 –
read_audit     –             –                 yes
delete_audit   –             –                 yes
session        yes           yes               yes
============== ============= ================= =========

- The administrator (系统管理员) sets the terminal up (configuration, accounts, backups) but does
  not operate it day to day and cannot read or erase the trail of what was done.
- The security operator (安全操作员) runs it: manual values, on-command reads, uploads.
- The auditor (安全审计员) only reads the audit log, exports and verifies it, and is the only
  one who may delete it (whole, never entry by entry, ISC-2 §7.4.1.3(4)). Not even reading the
  data: what an auditor needs is in the trail. Nor ``/monitor``: remote monitoring (ISC-2 §8.2,
  CSMT §10.6.2) is maintenance and names no role, its error log is the operations' log, not the
  security audit of §7.4.1.3; least privilege (§7.4.1.2(1)) leaves it to the other two.
- ``session`` is what every signed-in user may do to their own session: log out, change
  their own password.
- ``push`` belongs to no person: a collector pushing readings to the intake
  (:data:`COLLECTOR_ROLE`), authenticated by the intake's transport, not by a user session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    ADMINISTRATOR = "administrator"  # 系统管理员
    SECURITY_OPERATOR = "security_operator"  # 安全操作员
    AUDITOR = "auditor"  # 安全审计员


#: What the standard calls each role, for messages and the console.
ROLE_TITLES: Mapping[Role, str] = MappingProxyType(
    {
        Role.ADMINISTRATOR: "系统管理员 (system administrator)",
        Role.SECURITY_OPERATOR: "安全操作员 (security operator)",
        Role.AUDITOR: "安全审计员 (security auditor)",
    }
)


class Action(StrEnum):
    """What a route does, coarse enough to map onto the three roles of ISC-2 §7.4.1.2."""

    READ = "read"  # status, configuration (secrets hidden), data, events, export
    CONFIGURE = "configure"  # validate or replace the configuration
    OPERATE = "operate"  # manual entry, CSV import, on-command reads, uploads
    BACKUP = "backup"  # a copy of all the data leaves the terminal
    PUSH = "push"  # a collector pushing readings to the intake (a device, not a person)
    SESSION = "session"  # one's own session: log out, change one's own password
    MANAGE_USERS = "manage_users"  # accounts: list, create, delete, reset, unlock
    READ_AUDIT = "read_audit"  # query, export and verify the audit log
    DELETE_AUDIT = "delete_audit"  # delete the whole audit log


#: The pseudo-role of a device pushing to the intake.
COLLECTOR_ROLE = "collector"

PERMISSIONS: Mapping[str, frozenset[Action]] = MappingProxyType(
    {
        Role.ADMINISTRATOR: frozenset(
            {Action.READ, Action.CONFIGURE, Action.BACKUP, Action.MANAGE_USERS, Action.SESSION}
        ),
        Role.SECURITY_OPERATOR: frozenset({Action.READ, Action.OPERATE, Action.SESSION}),
        Role.AUDITOR: frozenset({Action.READ_AUDIT, Action.DELETE_AUDIT, Action.SESSION}),
        COLLECTOR_ROLE: frozenset({Action.PUSH}),
    }
)

#: Control operations (SSEA §5.5.3 「应对每一控制操作提供校核」): anything but a read of them
#: needs the caller's password again.
CONTROL_ACTIONS = frozenset(
    {Action.CONFIGURE, Action.OPERATE, Action.BACKUP, Action.MANAGE_USERS, Action.DELETE_AUDIT}
)


def role_permits(roles: Iterable[str], action: Action) -> bool:
    """Whether any of ``roles`` includes ``action``."""
    return any(action in PERMISSIONS.get(role, frozenset()) for role in roles)
