"""The API key lives in the OS keyring, never in the database, logs or output.

Keyring layout: service ``immich-tray-sync``; one entry per connection, user
``<connection name>@<server origin>`` (e.g. ``home@https://photos.example.com``). The database
keeps only that account name (the seed's ``api_token`` column).

``IMMICH_API_KEY`` in the environment overrides the keyring for every connection: for servers and
scripts where no keyring backend exists.

Keys are cached in memory after the first read, so scheduled syncs do not make a locked keyring
prompt again every half hour.
"""

from __future__ import annotations

import logging
import os
import threading
from urllib.parse import urlsplit

from tray_sync.logs import register_secret
from tray_sync.sync.errors import SecretStoreError

log = logging.getLogger(__name__)

SERVICE = "immich-tray-sync"
ENV_OVERRIDE = "IMMICH_API_KEY"

BACKEND_ENV = "PYTHON_KEYRING_BACKEND"
_WAYS_OUT = (
    "install and unlock a keyring (GNOME Keyring, KWallet, macOS Keychain, Windows Credential Manager), "
    f"choose a working keyring backend with {BACKEND_ENV}, "
    f"or set {ENV_OVERRIDE} in the environment whenever tray-sync runs"
)


def account_for(name: str, api_url: str) -> str:
    """The keyring user name of a connection: its name and the server's origin, no path."""
    parts = urlsplit(api_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else api_url
    return f"{name}@{origin}"


class SecretStore:
    """Reads and writes API keys through :mod:`keyring`, with a per-process cache."""

    def __init__(self, service: str = SERVICE, *, use_environment: bool = True) -> None:
        self.service = service
        self.use_environment = use_environment
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        # Held while the keyring is asked: threads that need a key at the same moment wait for the
        # first answer instead of each making a locked keyring prompt.
        self._read_lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------------

    def get(self, account: str) -> str:
        """The key of ``account``; one clear :class:`SecretStoreError` when it cannot be had."""
        override = os.environ.get(ENV_OVERRIDE, "").strip() if self.use_environment else ""
        if override:
            register_secret(override)
            return override
        with self._lock:
            cached = self._cache.get(account)
        if cached is not None:
            return cached
        with self._read_lock:
            with self._lock:
                cached = self._cache.get(account)
            if cached is not None:
                return cached
            key = self._read(account)
            if key is None:
                raise SecretStoreError(
                    f"No API key for {account!r} in the keyring ({self.backend_name()}): "
                    f"run `tray-sync connect` again, or set {ENV_OVERRIDE}."
                )
            register_secret(key)
            with self._lock:
                self._cache[account] = key
        return key

    def has(self, account: str) -> bool:
        try:
            self.get(account)
        except SecretStoreError:
            return False
        return True

    def _read(self, account: str) -> str | None:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError

        try:
            return keyring.get_password(self.service, account)
        except NoKeyringError as exc:
            raise SecretStoreError(f"No keyring is available to read the API key: {_WAYS_OUT}.") from exc
        except KeyringError as exc:
            raise SecretStoreError(
                f"The keyring refused to give the API key ({_describe(exc)}): unlock it, or set {ENV_OVERRIDE}."
            ) from exc

    # -- writing ------------------------------------------------------------------------------

    def set(self, account: str, key: str) -> None:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError, PasswordSetError

        register_secret(key)
        try:
            keyring.set_password(self.service, account, key)
        except NoKeyringError as exc:
            raise SecretStoreError(f"No keyring is available to store the API key: {_WAYS_OUT}.") from exc
        except (PasswordSetError, KeyringError) as exc:
            raise SecretStoreError(
                f"The keyring refused to store the API key ({_describe(exc)}): unlock it, or set {ENV_OVERRIDE}."
            ) from exc
        with self._lock:
            self._cache[account] = key
        log.info("API key stored in %s for %s", self.backend_name(), account)

    def remember(self, account: str, key: str) -> None:
        """Keep a key for this process only (the demo's throwaway keys never reach the keyring)."""
        register_secret(key)
        with self._lock:
            self._cache[account] = key

    def delete(self, account: str) -> bool:
        """Forget the key of ``account``; True when the keyring held one."""
        import keyring
        from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError

        with self._lock:
            self._cache.pop(account, None)
        try:
            keyring.delete_password(self.service, account)
        except PasswordDeleteError:
            return False
        except NoKeyringError as exc:
            raise SecretStoreError(f"No keyring is available to delete the API key: {_WAYS_OUT}.") from exc
        except KeyringError as exc:
            raise SecretStoreError(f"The keyring refused to delete the API key ({_describe(exc)}).") from exc
        return True

    @staticmethod
    def backend_name() -> str:
        import keyring

        backend = keyring.get_keyring()
        name = getattr(backend, "name", None) or type(backend).__name__
        return str(name)


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
