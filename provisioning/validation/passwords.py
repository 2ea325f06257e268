"""Initial passwords: generation (CSPRNG) and the Entra password policy check.

Policy (graph-facts section 2): 8-256 characters; at least 3 of lower-case, upper-case, digits, symbols; ASCII
letters, digits, the symbols ``@ # $ % ^ & * - _ ! + = [ ] { } | \\ : ' , . ? / ` ~ " ( ) ; < >`` and the blank.

Generated passwords draw uniformly from letters, digits and the symbols that are safe in CSV and spreadsheets (no
``= + - @`` which start formulas, no quotes, commas or semicolons, no blank) using ``secrets``; a candidate without
all four classes is rejected and drawn again, so every result has all four by construction and the choice stays
uniform over the compliant strings. Passwords are never logged or printed.
"""
from __future__ import annotations

import secrets
import string

MIN_LENGTH = 8
MAX_LENGTH = 256
SYMBOLS = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<>"
ALLOWED = frozenset(string.ascii_letters + string.digits + SYMBOLS + " ")
SAFE_SYMBOLS = "!#$%&()*./:?[]^_{|}~"
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits + SAFE_SYMBOLS

# bytes -> alphabet characters; bytes >= the largest multiple of len(ALPHABET) are deleted (no modulo bias)
_LIMIT = 256 - 256 % len(ALPHABET)
_TABLE = bytes(ord(ALPHABET[b % len(ALPHABET)]) if b < _LIMIT else 0 for b in range(256))
_DELETE = bytes(range(_LIMIT, 256))
_LOWER = frozenset(string.ascii_lowercase)
_UPPER = frozenset(string.ascii_uppercase)
_DIGIT = frozenset(string.digits)
_SYMBOL = frozenset(SYMBOLS + " ")


def generate_password(length: int = 16) -> str:
    """A random password of ``length`` (8-256) characters with lower, upper, digit and symbol, safe in CSV/Excel."""
    return generate_passwords(1, length)[0]


def generate_passwords(count: int, length: int = 16) -> list[str]:
    """``count`` independent passwords as :func:`generate_password` makes them, from as few reads of the OS's
    random source as possible (one per roster rather than one per row: thousands of system calls otherwise)."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"password length must be {MIN_LENGTH}-{MAX_LENGTH}, not {length}")
    out: list[str] = []
    while len(out) < count:
        # Consecutive slices of a stream of uniform characters are independent uniform strings; rejecting a
        # slice without all four classes keeps the choice uniform over the compliant ones. A slice costs about
        # 1.05 * length bytes after the deletions and about 1.4 slices are drawn per password: 2 * length bytes
        # per password still wanted is enough for nearly every round.
        stream = secrets.token_bytes((count - len(out)) * length * 2 + length).translate(_TABLE, _DELETE)
        for start in range(0, len(stream) - length + 1, length):
            candidate = stream[start:start + length].decode("ascii")
            chars = set(candidate)
            if chars & _LOWER and chars & _UPPER and chars & _DIGIT and chars & _SYMBOL:
                out.append(candidate)
                if len(out) == count:
                    break
    return out


def character_classes(password: str) -> int:
    """How many of the four classes (lower, upper, digit, symbol) ``password`` uses."""
    chars = set(password)
    return sum(bool(chars & c) for c in (_LOWER, _UPPER, _DIGIT, _SYMBOL))


def password_problems(password: str, *, user_names: tuple[str, ...] = (), strong: bool = True) \
        -> list[tuple[str, str]]:
    """``(code, message)`` for each way ``password`` breaks the Entra policy (empty list: it complies).

    The message never repeats the password. ``user_names`` (e.g. the UPN's local part) must not appear in it.
    ``strong=False`` (``passwordPolicies`` has ``DisableStrongPassword``) skips the class and name checks.
    """
    problems: list[tuple[str, str]] = []
    if len(password) < MIN_LENGTH:
        problems.append(("password-too-short", f"the password has {len(password)} characters; use at least "
                                               f"{MIN_LENGTH}, or leave the cell empty to have one generated"))
    elif len(password) > MAX_LENGTH:
        problems.append(("password-too-long", f"the password has {len(password)} characters; use at most "
                                              f"{MAX_LENGTH}"))
    if not password.isascii():
        problems.append(("password-non-ascii", "the password has non-ASCII characters (accents, emoji...), which "
                                               "Entra rejects; use ASCII letters, digits and symbols"))
    elif not set(password) <= ALLOWED:
        problems.append(("password-invalid-char", "the password has a character Entra does not allow (a tab or "
                                                  "control character); use letters, digits and symbols"))
    if strong:
        if character_classes(password) < 3:
            problems.append(("password-weak", "the password must mix 3 of: lower-case, upper-case, digits, "
                                              "symbols; make it stronger or leave the cell empty to generate one"))
        low = password.lower()
        for name in user_names:
            if len(name) >= 3 and name.lower() in low:
                problems.append(("password-contains-name", "the password contains the user's name, which Entra "
                                                           "rejects; choose another"))
                break
    return problems
