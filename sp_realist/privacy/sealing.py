"""Encrypted reversal records.

What ``anonymise --reverse`` needs (each replaced original, exact spans that
had to move inside a name, old field values) is sealed with Fernet
(AES-128-CBC + HMAC-SHA256, from the ``cryptography`` package) under a key
derived with HKDF-SHA256 from the pseudonym key (its ``secret`` when it has
one, else its full content) and a random per-record salt.  Without the key
file, the record is opaque; with the wrong key, opening it fails cleanly.
"""

from __future__ import annotations

import base64
import json
import os
import zlib

from ..errors import SpRealistError

INFO = b"sp_realist reversal record v1"


def _fernet(material: bytes, salt: bytes):
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO).derive(material)
    return Fernet(base64.urlsafe_b64encode(raw))


def seal(payload: dict, material: bytes) -> str:
    salt = os.urandom(16)
    data = zlib.compress(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    token = _fernet(material, salt).encrypt(data)
    return base64.urlsafe_b64encode(salt).decode("ascii") + ":" + token.decode("ascii")


def unseal(sealed: str, material: bytes, where: str) -> dict:
    from cryptography.fernet import InvalidToken

    try:
        salt_b64, token = sealed.split(":", 1)
        data = _fernet(material, base64.urlsafe_b64decode(salt_b64)).decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError):
        raise SpRealistError(
            f"{where}: this key cannot open the reversal record; use the key file that was applied "
            "(unchanged, or with the same 'secret')."
        ) from None
    return json.loads(zlib.decompress(data).decode("utf-8"))
