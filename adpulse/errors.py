"""Domain errors: each says what was wrong and what to do next."""


class AdpulseError(Exception):
    """Base for errors the CLI prints as one line and exits 1 on."""


class ConfigError(AdpulseError):
    """A setting, topology or template value is invalid."""


class MigrationError(AdpulseError):
    """A schema migration cannot be applied or the ledger disagrees with the files."""
