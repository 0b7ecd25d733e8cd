"""Identifier validation: the only way a name reaches SQL that is not a bound parameter."""

import re

from adpulse.errors import ConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def validate_identifier(name: str, *, what: str = "identifier") -> str:
    """Return `name` if it is a plain ClickHouse identifier, else raise ConfigError."""
    if not _IDENTIFIER.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} is not a plain identifier (letters, digits, underscore; "
            "not starting with a digit; at most 63 characters)"
        )
    return name
