"""Passwords people choose (the console's, an MM7 connection's inbound one) are stored as scrypt hashes with
a random salt, and checked in constant time. (API keys and tokens are random 256-bit values: a plain
SHA-256 stores them.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def hash_password(password: str) -> str:
    """How a password is stored: scrypt (n=2^14, r=8) with a random 128-bit salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    mine = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(mine, base64.b64decode(digest))
