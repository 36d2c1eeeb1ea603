"""start_run admission: everything checked before a run exists, and the plan it yields.

Pure checks on the request (sizes, pid, probes the daemon has), the peer's identity and home,
and the run's ruleset. The result is a `StartPlan`: what the session manager needs to create
the run, as one typed value instead of a dozen parameters.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import time

import msgspec

from logira import __version__
from logira.daemon import protocol as p
from logira.daemon.config import DaemonConfig
from logira.daemon.guard import GuardError, check_sizes
from logira.detect.loader import RuleSet
from logira.errors import LogiraError
from logira.format.meta import DropsMeta, FilteredMeta, ProbesMeta, RunMeta
from logira.storage.runids import sanitize_tool


class StartError(LogiraError):
    """start_run refused: the message goes back to the client as one line."""


class StartPlan(msgspec.Struct, kw_only=True):
    """An admitted start_run: who, where, and with which rules."""

    msg: p.StartRun
    uid: int
    gid: int
    user: str
    home: str  # $LOGIRA_HOME of the run (absolute)
    passwd_home: str  # the user's home directory ("" when the uid has none)
    cwd: str
    now_ns: int
    rules: RuleSet | None

    @property
    def domains(self) -> dict[str, bool]:
        return {"exec": self.msg.exec, "file": self.msg.file, "net": self.msg.net}


def check_request(cfg: DaemonConfig, msg: p.StartRun) -> None:
    """What a start_run must satisfy on its own; raises StartError (one line)."""
    if not msg.argv:
        raise StartError("argv is empty")
    try:
        check_sizes(argv=msg.argv, cwd=msg.cwd, home=msg.home, rules_path=msg.rules_path, tool=msg.tool,
                    rules_yaml=msg.rules_yaml)  # fmt: skip
    except GuardError as exc:
        raise StartError(str(exc)) from None
    if msg.pid <= 1:
        raise StartError(f"invalid pid {msg.pid}")
    for dom in ("exec", "file", "net"):
        if getattr(msg, dom) and not getattr(cfg, dom):
            raise StartError(
                f"logirad runs without the {dom} probes; pass --no-{dom} or enable {dom} in logirad.toml"
            )


def identity(uid: int, msg: p.StartRun) -> tuple[str, str, str]:
    """(user name, passwd home, $LOGIRA_HOME) of the peer; raises StartError."""
    try:
        pw = pwd.getpwuid(uid)
        user, passwd_home = pw.pw_name, pw.pw_dir
    except KeyError:
        user, passwd_home = str(uid), ""
    if msg.home:
        if not os.path.isabs(msg.home):
            raise StartError(f"home must be an absolute path, not {msg.home!r}")
        return user, passwd_home, os.path.normpath(msg.home)
    if passwd_home:
        return user, passwd_home, os.path.join(passwd_home, ".logira")
    raise StartError(f"uid {uid} has no home directory; set LOGIRA_HOME")


def plan(msg: p.StartRun, uid: int, gid: int, rules: RuleSet | None) -> StartPlan:
    user, passwd_home, home = identity(uid, msg)
    return StartPlan(msg=msg, uid=uid, gid=gid, user=user, home=home, passwd_home=passwd_home,
                     cwd=msg.cwd if os.path.isabs(msg.cwd) else "/", now_ns=time.time_ns(), rules=rules)  # fmt: skip


def initial_meta(plan: StartPlan, run_id: str, run_dir: str) -> RunMeta:
    """meta.json of a run that has just started (status "running")."""
    msg = plan.msg
    return RunMeta(
        run_id=run_id,
        tool=sanitize_tool(msg.tool),
        command=" ".join(msg.argv),
        command_argv=list(msg.argv),
        cwd=plan.cwd,
        uid=plan.uid,
        gid=plan.gid,
        user=plan.user,
        host=os.uname().nodename,
        run_dir=run_dir,  # canonical (no symlinks: every component was O_NOFOLLOW)
        start_ts=plan.now_ns,
        status="running",
        probes=ProbesMeta(exec=msg.exec, file=msg.file, net=msg.net),
        drops=DropsMeta(),
        filtered=FilteredMeta(),
        rules_sha256=(plan.rules.sha256 if plan.rules is not None else "") or "",
        custom_rules_path=msg.rules_path if msg.rules_yaml else "",
        custom_rules_sha256=hashlib.sha256(msg.rules_yaml.encode()).hexdigest() if msg.rules_yaml else "",
        logira_version=__version__,
        kernel_release=os.uname().release,
        root_pid=msg.pid,
    )
