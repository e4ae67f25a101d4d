"""Encryption at rest for buyer data: Fernet with key rotation (newest key first)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """Raised when a token cannot be decrypted with any configured key."""


class Vault:
    """Encrypts JSON documents. The first key encrypts; every key decrypts (for rotation)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, document: Any) -> bytes:
        plain = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return self._fernet.encrypt(plain)

    def decrypt(self, token: bytes) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token))
        except InvalidToken as exc:
            raise VaultError("token not decryptable with the configured keys") from exc

    def encrypt_bytes(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def decrypt_bytes(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise VaultError("token not decryptable with the configured keys") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a token under the newest key."""
        return self._fernet.rotate(token)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()
