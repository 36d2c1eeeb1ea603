"""Errors that reach the user as one line (`error: ...`) and a non-zero exit."""


class CliError(Exception):
    """Expected failure: printed as `error: <message>`, exit status `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
