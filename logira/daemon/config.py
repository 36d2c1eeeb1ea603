"""logirad configuration: defaults < TOML file < environment < command-line flags.

config/logirad.toml documents every key with its default. Environment variables
LOGIRA_SOCK and LOGIRA_STATE_DIR override the file so tests and packagers can move the
daemon without writing a config file.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

import msgspec

from logira.errors import LogiraError

DEFAULT_CONFIG = Path("/etc/logira/logirad.toml")


class ConfigError(LogiraError):
    """A one-line configuration problem."""


class DaemonConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    socket: str = "/run/logira.sock"
    state_dir: str = "/var/lib/logira"
    cgroup_parent: str = "logira"
    exec: bool = True
    file: bool = True
    net: bool = True
    ring_bytes: int = 16 << 20
    wake_bytes: int = 256 << 10
    argv_max: int = 4096
    max_runs_per_uid: int = 8
    max_runs_total: int = 128
    straggler_wait: float = 2.0  # seconds after agent_exited before survivors are stragglers
    straggler_action: str = "kill"  # kill | leave
    detach_linger: float = 2.0  # seconds probes stay attached after the last run ends
    site_rules_dir: str = "/etc/logira/rules.d"
    run_group: str = ""  # "" = any local user may connect; else only root and members of this group
    log_format: str = "json"  # json | console
    journald: str = "auto"  # auto | on | off
    journald_socket: str = "/run/systemd/journal/socket"
    queue_high: int = 8192  # per-run queued events before the ring reader pauses
    queue_low: int = 2048  # ... and resumes
    follower_buffer: int = 4096  # records buffered per `follow` client before it is cut off
    flush_interval: float = 0.5  # JSONL flush period (the contract: at least every second)
    # low detection for each destination no earlier run of the workspace contacted (daemon/egress.py)
    new_egress_detection: bool = False
    # OTLP logs export (HTTP/JSON, sinks/otlp.py); off unless an endpoint is set
    otlp_endpoint: str = ""  # e.g. http://127.0.0.1:4318 (POSTs /v1/logs)
    otlp_timeout: float = 5.0  # seconds per request
    otlp_batch_max: int = 1024  # records per request
    otlp_queue_max: int = 100_000  # records waiting for the collector; beyond it shed and counted
    otlp_retries: int = 4  # retries of a failed request (exponential backoff from 0.25 s)
    otlp_finish_wait: float = 2.0  # seconds a finished run waits for its records to be sent
    otlp_headers: dict[str, str] = {}  # e.g. {authorization = "Bearer ..."}

    def validate(self) -> None:
        if self.straggler_action not in ("kill", "leave"):
            raise ConfigError(f"straggler_action must be kill or leave, not {self.straggler_action!r}")
        if self.log_format not in ("json", "console"):
            raise ConfigError(f"log_format must be json or console, not {self.log_format!r}")
        if self.journald not in ("auto", "on", "off"):
            raise ConfigError(f"journald must be auto, on or off, not {self.journald!r}")
        if self.ring_bytes < 4096 or self.ring_bytes & (self.ring_bytes - 1):
            raise ConfigError(f"ring_bytes must be a power of two >= 4096, not {self.ring_bytes}")
        if not self.cgroup_parent or "/" in self.cgroup_parent or self.cgroup_parent in (".", ".."):
            raise ConfigError(f"cgroup_parent must be a single directory name, not {self.cgroup_parent!r}")
        if not os.path.isabs(self.socket) or not os.path.isabs(self.state_dir):
            raise ConfigError("socket and state_dir must be absolute paths")
        if not 0 <= self.detach_linger <= 3600:
            raise ConfigError(f"detach_linger must be between 0 and 3600 seconds, not {self.detach_linger}")
        if self.max_runs_per_uid < 1 or self.max_runs_total < 1:
            raise ConfigError("max_runs_per_uid and max_runs_total must be >= 1")
        if self.flush_interval <= 0 or self.flush_interval > 1.0:
            raise ConfigError("flush_interval must be in (0, 1] seconds")
        if self.run_group:
            run_group_gid(self.run_group)
        if self.queue_low >= self.queue_high:
            raise ConfigError("queue_low must be below queue_high")
        if self.otlp_endpoint:
            from logira.sinks.otlp import parse_endpoint

            try:
                parse_endpoint(self.otlp_endpoint)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            if not (0 < self.otlp_timeout <= 300 and 0 <= self.otlp_finish_wait <= 300):
                raise ConfigError("otlp_timeout must be in (0, 300] and otlp_finish_wait in [0, 300] seconds")
            if self.otlp_batch_max < 1 or self.otlp_queue_max < self.otlp_batch_max or self.otlp_retries < 0:
                raise ConfigError("otlp_batch_max >= 1, otlp_queue_max >= otlp_batch_max, otlp_retries >= 0")


def run_group_gid(name: str) -> int:
    """The gid of `run_group`; ConfigError naming the fix when the group does not exist."""
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(
            f"run_group {name!r} does not exist: create it (groupadd --system {name}) and add the users "
            f"who may run agents (usermod -aG {name} USER)"
        ) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="logirad", description="logira root daemon: records agent runs from the kernel."
    )
    p.add_argument("--config", help=f"TOML config file (default {DEFAULT_CONFIG} if it exists)")
    p.add_argument("--sock", dest="socket", help="unix socket path (env LOGIRA_SOCK)")
    p.add_argument("--state-dir", help="root-owned state dir (env LOGIRA_STATE_DIR)")
    p.add_argument("--cgroup-parent", help="name of the parent cgroup of all runs")
    for dom in ("exec", "file", "net"):
        p.add_argument(
            f"--{dom}",
            dest=dom,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"load the {dom} probes",
        )
    p.add_argument("--ring-bytes", type=int)
    p.add_argument("--argv-max", type=int)
    p.add_argument("--max-runs-per-uid", type=int)
    p.add_argument("--max-runs-total", type=int)
    p.add_argument("--straggler-wait", type=float)
    p.add_argument("--straggler-action", choices=["kill", "leave"])
    p.add_argument("--detach-linger", type=float, help="seconds probes stay attached after the last run")
    p.add_argument("--site-rules-dir")
    p.add_argument("--log-format", choices=["json", "console"])
    p.add_argument("--journald", choices=["auto", "on", "off"])
    p.add_argument(
        "--run-group",
        metavar="GROUP",
        help="only root and members of GROUP may use the socket (mode 0660 root:GROUP); '' = everyone",
    )
    return p


def load(argv: list[str] | None = None, env: dict[str, str] | None = None) -> DaemonConfig:
    """Build the effective configuration. Raises ConfigError with a one-line message."""
    env = dict(os.environ) if env is None else env
    args = parser().parse_args(argv)
    data: dict[str, object] = {}
    path = Path(args.config) if args.config else DEFAULT_CONFIG
    if args.config or path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path}: {exc}") from None
    if env.get("LOGIRA_SOCK"):
        data["socket"] = env["LOGIRA_SOCK"]
    if env.get("LOGIRA_STATE_DIR"):
        data["state_dir"] = env["LOGIRA_STATE_DIR"]
    for key, value in vars(args).items():
        if key != "config" and value is not None:
            data[key] = value
    try:
        cfg = msgspec.convert(data, DaemonConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    cfg.validate()
    return cfg
