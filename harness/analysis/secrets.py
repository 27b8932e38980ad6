"""Secret build args: which names are secret, and masking their values wherever they show.

Pure functions, no I/O. A build arg is secret when its name is one the user named
(`--secret-arg`, compared case-insensitively) or when it contains, case-insensitively,
TOKEN, SECRET, PASSWORD, PASSWD, API_KEY or APIKEY (`-` and `.` count as `_`, so
`api-key` matches too). API_KEY is included because it is as common a name for a
credential as TOKEN; a false positive only hides a value, a miss leaks one.

Masking text replaces every occurrence of a secret value with "***". Values shorter than
MIN_MASKED_LENGTH characters are left alone in free text: masking "1" or "ab" would
shred every log line and hide nothing (such a value is no secret worth the name); the
build arg itself is still shown as "***" by `mask_args`, whatever its length.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_MASKED_LENGTH = 4
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY")


def _normal(name: str) -> str:
    return name.strip().upper().replace("-", "_").replace(".", "_")


def is_secret(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a build arg named `name` holds a secret."""
    key = _normal(name)
    if any(key == _normal(e) for e in extra):
        return True
    return any(word in key for word in SECRET_WORDS)


def mask_args(args: dict, extra: Iterable[str] = ()) -> dict:
    """The build args with each secret one's value replaced by "***"."""
    extra = tuple(extra)
    return {key: MASK if is_secret(str(key), extra) else value for key, value in args.items()}


def _maskable(values: Iterable[str]) -> list[str]:
    """Distinct values long enough to mask, longest first (a value containing another is
    masked whole, not around the shorter one)."""
    kept = {v for v in values if isinstance(v, str) and len(v) >= MIN_MASKED_LENGTH}
    return sorted(kept, key=lambda v: (-len(v), v))


def mask_text(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of each secret value replaced by "***"."""
    return _replace(text, _maskable(values))


def _replace(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_record(record: Any, values: Iterable[str]) -> Any:
    """A copy of a results record (nested dicts, lists, strings) with every secret value
    masked in every string, keys included: log tails, errors, build args, Dockerfile
    text. The record given is not modified; other scalars are returned as they are."""
    return _walk(record, _maskable(values))


def _walk(obj: Any, values: list[str]) -> Any:
    if isinstance(obj, str):
        return _replace(obj, values)
    if isinstance(obj, dict):
        return {_walk(k, values) if isinstance(k, str) else k: _walk(v, values)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk(item, values) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_walk(item, values) for item in obj)
    return obj
