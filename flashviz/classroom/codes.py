"""Room codes a lecturer reads aloud and students type, and the lecturer's secret token.

A code is ``CODE_LENGTH`` characters of ``ALPHABET``: capitals and digits without the ones
read or typed alike (0/O/D/Q, 1/I/L, 2/Z, 5/S, 8/B, U/V), so that "K7HRW" survives a hall.
Typed codes are cleaned (``clean_code``): spaces and dashes dropped, lower case raised;
anything else is not a code. The lead token is ``TOKEN_BYTES`` random bytes (128 bits) from
``secrets``, URL-safe, and is compared in constant time (``tokens_match``).
"""

from __future__ import annotations

import hmac
import re
import secrets

ALPHABET = "ACEFGHJKMNPRTWXY34679"  # 21 symbols, none confusable with another
CODE_LENGTH = 5  # 21**5 = 4.1 million codes
TOKEN_BYTES = 16  # 128 random bits
MAX_TYPED_CHARS = 32  # a typed code longer than this is not looked at
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")  # token_urlsafe(16): 22 characters


def new_code() -> str:
    """A random room code (the store checks it is not in use)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def clean_code(typed: object) -> str | None:
    """The code a student typed or linked, normalised; None if it cannot be one."""
    if not isinstance(typed, str) or len(typed) > MAX_TYPED_CHARS:
        return None
    code = typed.strip().upper().replace(" ", "").replace("-", "")
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def new_token() -> str:
    """The lead token of a new room: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token(text: object) -> bool:
    """``text`` has the form of a lead token (checked before it is compared)."""
    return isinstance(text, str) and _TOKEN.fullmatch(text) is not None


def tokens_match(given: object, expected: str) -> bool:
    """``given`` is the room's token, compared in constant time."""
    if not is_token(given):
        return False
    assert isinstance(given, str)
    return hmac.compare_digest(given.encode(), expected.encode())
