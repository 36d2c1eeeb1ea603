"""logira: runtime security for AI agents on Linux."""

__version__ = "0.2.0"
