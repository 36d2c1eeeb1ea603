"""The CLI's name for the error root (kept so command modules read as before)."""

from logira.errors import LogiraError as CliError

__all__ = ["CliError"]
