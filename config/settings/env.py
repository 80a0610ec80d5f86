"""Typed readers for environment variables that fail loudly on a bad value.

A misspelt boolean or a non-numeric limit must stop the process at start-up, not
silently fall back to a default that nobody chose.
"""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_UNSET = object()


def _raw(name: str, default: object) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _UNSET:
            raise ImproperlyConfigured(f"Environment variable {name} is required.")
        return None
    return value


def env_str(name: str, default: object = _UNSET) -> str:
    value = _raw(name, default)
    return default if value is None else value  # type: ignore[return-value]


def env_bool(name: str, default: object = _UNSET) -> bool:
    value = _raw(name, default)
    if value is None:
        return default  # type: ignore[return-value]
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name}={value!r} is not a boolean (use one of {sorted(_TRUE | _FALSE)})."
    )


def env_int(name: str, default: object = _UNSET, *, minimum: int | None = None) -> int:
    value = _raw(name, default)
    if value is None:
        return default  # type: ignore[return-value]
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"Environment variable {name}={number} is below {minimum}.")
    return number


def env_list(name: str, default: object = _UNSET) -> list[str]:
    value = _raw(name, default)
    if value is None:
        return list(default)  # type: ignore[call-overload]
    return [item.strip() for item in value.split(",") if item.strip()]
