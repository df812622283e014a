"""Encryption at rest (Fernet: AES-128-CBC + HMAC-SHA256) with ``TOLLWAY_SECRET_KEY``: channel
credentials, TOTP secrets, redemption codes (for their export) and pending sign-in cookies.
``tollway secret-key rotate`` re-seals the stored ones with a new key (docs/security.md)."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    def __init__(self, key_material: str) -> None:
        digest = hashlib.sha256(key_material.encode("utf-8")).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError(
                "cannot decrypt a channel credential: TOLLWAY_SECRET_KEY differs from the one "
                "it was stored with"
            ) from exc

    def try_open(self, token: str) -> str | None:
        """The plaintext, or ``None`` when this key did not seal ``token``."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            return None

    @classmethod
    def from_settings(cls, secret_key: str | None, data_dir: Path) -> SecretBox:
        """Use TOLLWAY_SECRET_KEY, else a key generated once into the data directory."""
        if secret_key:
            return cls(secret_key)
        path = key_file(data_dir)
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"))
        return cls(path.read_text().strip())


def key_file(data_dir: Path) -> Path:
    """Where the key lives when TOLLWAY_SECRET_KEY is not set."""
    return data_dir / "secret.key"
