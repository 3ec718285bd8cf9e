"""One domain exception family, classified once.

The CLI catches :class:`TraySyncError` at its edge and turns it into one line and an exit
code; the engine uses :attr:`retryable` to decide whether to back off and try again, and
:attr:`kind` to tell the tray which state to show (offline is not an error).
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    """What the user (or the tray icon) should make of an error."""

    OFFLINE = "offline"  # server unreachable: not the user's fault, retried by itself
    AUTH = "auth"  # invalid key
    PERMISSION = "permission"  # key lacks a permission
    NOT_FOUND = "not_found"  # asset or album gone
    SERVER = "server"  # server misbehaved (5xx, bad JSON)
    CONFIG = "config"  # usage or configuration problem
    DISK = "disk"  # disk full, folder gone, permission denied locally
    INTEGRITY = "integrity"  # checksum or size mismatch
    CANCELLED = "cancelled"
    INTERNAL = "internal"


class TraySyncError(Exception):
    """Base of every error the user may see. ``str(err)`` is one clear line."""

    kind: ErrorKind = ErrorKind.INTERNAL
    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(TraySyncError):
    """Wrong usage or configuration: exit 2."""

    kind = ErrorKind.CONFIG
    exit_code = 2


class ServerError(TraySyncError):
    """Anything the server answered (or failed to answer)."""

    kind = ErrorKind.SERVER

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        kind: ErrorKind | None = None,
    ) -> None:
        super().__init__(message, kind=kind)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class OfflineError(ServerError):
    """Connection refused, DNS failure, timeout: the server cannot be reached now."""

    kind = ErrorKind.OFFLINE

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True, kind=ErrorKind.OFFLINE)


class AuthError(ServerError):
    kind = ErrorKind.AUTH


class PermissionMissingError(ServerError):
    kind = ErrorKind.PERMISSION

    def __init__(self, message: str, missing: list[str], *, status: int | None = 403) -> None:
        super().__init__(message, status=status, kind=ErrorKind.PERMISSION)
        self.missing = missing


class NotFoundError(ServerError):
    kind = ErrorKind.NOT_FOUND


class UnsupportedServerError(ServerError):
    kind = ErrorKind.CONFIG


class IntegrityError(TraySyncError):
    """Downloaded bytes do not match the server's size or checksum."""

    kind = ErrorKind.INTEGRITY
    retryable = True


class LocalDiskError(TraySyncError):
    """Disk full, destination folder gone, permission denied: stops one album."""

    kind = ErrorKind.DISK


class SecretStoreError(TraySyncError):
    """No usable keyring backend, or the key is missing from it."""

    kind = ErrorKind.CONFIG
    exit_code = 2


class CancelledError(TraySyncError):
    kind = ErrorKind.CANCELLED
