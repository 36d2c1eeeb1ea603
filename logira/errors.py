"""The one exception tree of logira. Every expected failure is a `LogiraError`.

    LogiraError                  one line for the user (`error: <message>`), `exit_code`
    ├── ConfigError              logirad.toml / command line of logirad      (daemon/config.py)
    ├── LoggingError             journald requested but absent               (daemon/logging.py)
    ├── FatalError               logirad cannot start                        (daemon/main.py)
    ├── StartError               start_run refused (sent to the client)      (daemon/sessions.py)
    ├── GuardError               held pid / request sizes                    (daemon/guard.py)
    ├── RunFilesError            run files cannot be created / reopened      (daemon/runfiles.py)
    ├── ProbeError               BPF objects, BTF, ring buffer               (probes/loader.py)
    ├── RuleError                a rules file, as file:line: rule <id>: ...  (detect/loader.py)
    ├── CgroupError              cgroup2 mount / run cgroups                 (cgroup2.py)
    ├── DaemonError              talking to logirad                          (client/connection.py)
    ├── HomeError                $LOGIRA_HOME unusable                       (storage/home.py)
    ├── StateDirError            the daemon's state dir is unsafe            (storage/statedir.py)
    ├── UnsafePathError          a run path is not what it must be           (storage/safefs.py)
    ├── RunDirError              a run directory cannot be created / opened  (storage/safefs.py)
    ├── MetaError                meta.json cannot be decoded                 (format/meta.py)
    └── SchemaError              index.sqlite has an unknown schema          (format/index.py)

The subclasses stay next to the code that raises them (so a module's failure modes are read
where they happen); only this root is shared. `logira.cli.main` catches `LogiraError` and prints
one line; anything else is a bug and keeps its traceback. Nothing here imports logira.
"""

from __future__ import annotations


class LogiraError(Exception):
    """Expected failure: printed as `error: <message>`, exit status `exit_code`."""

    exit_code: int = 1

    # One message only: a second positional argument (an exit status passed by position) would
    # make str() a tuple and the user would read "error: ('…', 1)".
    def __init__(self, message: str = "", *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
