"""The security core's refusals: one exception class each, every message quoting its clause.

A class carries a stable ``code`` (what an API answers as ``error``) and the clause it enforces,
quoted from the seeds (ISC-2 2025-03 draft, SSEA), so a refusal says *why* in the standard's
own words. Mapping a code to an HTTP status is the API's business, not this package's.
"""

from __future__ import annotations

from typing import ClassVar

IDENTIFICATION = (
    "ISC-2 §7.4.1.1(1): 身份标识具有唯一性，身份鉴别信息应具有复杂度要求，并进行有效期限制"
)
LOGIN_FAILURE = (
    "ISC-2 §7.4.1.1(2): 应具有登录失败处理功能，应配置并启用结束会话、限制非法登录次数和"
    "当登录连接超时自动退出等相关措施"
)
LEAST_PRIVILEGE = "ISC-2 §7.4.1.2(1): 根据各账号角色分配其任务所需的最小权限"
AUTHORISED_ONLY = "ISC-2 §7.4.1.2(2): 应只允许身份鉴别正确的用户访问被授权访问的资源"
ADMIN_ADDRESS = "ISC-2 §7.4.1.2(3): 应支持对登录装置的管理员登录地址进行限制"
AUDIT_RECORDS = (
    "ISC-2 §7.4.1.3(2): 审计记录应包括事件的日期和时间、用户、事件类型、事件是否成功"
    "及其他与审计相关的信息"
)
AUDIT_PROTECTION = (
    "ISC-2 §7.4.1.3(4): 应对审计进程进行保护，防止未经授权的中断；"
    "审计日志不允许逐条删除，仅允许全部删除"
)
STORED_DATA = (
    "ISC-2 §7.4.1.4(1)(2): 采用密码技术保证重要数据在存储过程中的完整性和保密性，"
    "包括但不限于鉴别数据、重要配置数据等"
)
CONTROL_CHECK = "SSEA §5.5.3: 系统应具备操作权限和控制口令设置功能，应对每一控制操作提供校核"


class SecurityError(Exception):
    """Something the security rules refuse; ``str(exc)`` ends with the quoted clause."""

    code: ClassVar[str] = "security_error"
    clause: ClassVar[str] = AUTHORISED_ONLY

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} ({self.clause})")
        self.message = message


class PasswordRejected(SecurityError):
    """A new password that breaks the complexity, history or expiry rules."""

    code = "password_rejected"
    clause = IDENTIFICATION


class LoginFailed(SecurityError):
    """Wrong user or password. Deliberately does not say which."""

    code = "login_failed"
    clause = LOGIN_FAILURE


class AccountLocked(SecurityError):
    """Too many failures: no login until ``locked_until`` (terminal time)."""

    code = "account_locked"
    clause = LOGIN_FAILURE

    def __init__(self, message: str, locked_until: float) -> None:
        super().__init__(message)
        self.locked_until = locked_until


class SourceRefused(SecurityError):
    """An administrator reaching the terminal from outside the configured networks."""

    code = "source_refused"
    clause = ADMIN_ADDRESS


class NotAuthenticated(SecurityError):
    """A request without a session (no or another kind of ``Authorization``)."""

    code = "unauthenticated"
    clause = AUTHORISED_ONLY


class SessionInvalid(SecurityError):
    """No session, an unknown, ended, idle or expired one, or one from another address."""

    code = "session_invalid"
    clause = LOGIN_FAILURE


class TooManySessions(SecurityError):
    code = "too_many_sessions"
    clause = LOGIN_FAILURE


class PasswordChangeRequired(SecurityError):
    """A one-time or expired password: the session may only change it (or log out)."""

    code = "password_change_required"
    clause = IDENTIFICATION


class Forbidden(SecurityError):
    """The caller's role does not include the action."""

    code = "forbidden"
    clause = LEAST_PRIVILEGE


class ConfirmationRequired(SecurityError):
    """A control operation sent without its confirmation password."""

    code = "confirmation_required"
    clause = CONTROL_CHECK


class ConfirmationFailed(SecurityError):
    """A control operation whose confirmation password is wrong (counts as a failed login)."""

    code = "confirmation_failed"
    clause = CONTROL_CHECK


class UnknownUser(SecurityError):
    code = "unknown_user"
    clause = IDENTIFICATION


class BadUserId(SecurityError):
    code = "bad_user_id"
    clause = IDENTIFICATION


class UserExists(SecurityError):
    code = "user_exists"
    clause = IDENTIFICATION


class UserProtected(SecurityError):
    """Deleting the last administrator, or one's own account: the terminal would be left
    without anyone to manage it."""

    code = "user_protected"
    clause = LEAST_PRIVILEGE


class BootstrapError(SecurityError):
    """An initial user that cannot be made (its one-time password is not in the environment,
    or is too weak)."""

    code = "bootstrap"
    clause = IDENTIFICATION


class AuditUnavailable(SecurityError):
    """The audit log cannot be written (its store is not open): nothing is done unaudited."""

    code = "audit_unavailable"
    clause = AUDIT_PROTECTION


class SecretsError(SecurityError):
    """A sealed secret that does not open (tampered, wrong key, not sealed by this terminal)."""

    code = "secret_rejected"
    clause = STORED_DATA


class KeyFileError(SecretsError):
    """The key file cannot be made or read, or others may read it."""

    code = "key_file"
