"""Synthesized run records for the pure join tests (the shapes the daemon stores)."""

from __future__ import annotations

from logira.agents.join import Ev, EvData

MS = 1_000_000
HOME = "/home/u"
WRAP = ("source /home/u/.claude/shell-snapshots/snapshot-bash-1-a.sh 2>/dev/null || true && "
        "\\builtin shopt -u extglob 2>/dev/null || true && eval '{cmd}' && pwd -P >| /tmp/claude-ab-cwd")  # fmt: skip


def claude_wrap(cmd: str) -> list[str]:
    return ["/bin/bash", "-c", WRAP.format(cmd=cmd.replace("'", "'\"'\"'"))]


class Run:
    def __init__(self) -> None:
        self.evs: list[Ev] = []
        self.t = 1_000 * MS

    def add(self, type_: str, pid: int, ppid: int = 0, dt: int = 10 * MS, **data) -> Ev:
        self.t += dt
        ev = Ev(seq=len(self.evs) + 1, ts=self.t, type=type_, pid=pid, ppid=ppid, data_json=EvData(**data))
        self.evs.append(ev)
        return ev

    def exec(self, pid: int, ppid: int, argv: list[str], **kw) -> Ev:
        return self.add("exec", pid, ppid, filename=argv[0] if argv[0].startswith("/") else f"/usr/bin/{argv[0]}",
                        argv=argv, **kw)  # fmt: skip

    def fork(self, parent: int, child: int, dt: int = 10 * MS) -> Ev:
        return self.add("proc", parent, op="fork", child_pid=child, dt=dt)

    def spawn(self, parent: int, child: int, argv: list[str], dt: int = 10 * MS, **kw) -> Ev:
        self.fork(parent, child, dt=dt)
        return self.exec(child, parent, argv, **kw)

    def exit(self, pid: int) -> Ev:
        return self.add("proc", pid, op="exit")

    def file(self, pid: int, op: str, path: str, **kw) -> Ev:
        return self.add("file", pid, op=op, path=path, **kw)

    def hook(self, sender: int, event: str, **kw) -> Ev:
        kw.setdefault("agent", "claude")
        return self.add("agent", sender, op="hook", source="hook", event=event, sender_pid=sender, **kw)

    def send_hook(self, agent: int, hook_pid: int, event: str, **kw) -> Ev:
        """What Claude does: `sh -c "<logira hook>"` child, exec of logira hook, the message, exit."""
        self.spawn(agent, hook_pid, ["/usr/bin/python3", "-m", "logira.cli.main", "hook", "--agent", "claude"])
        ev = self.hook(hook_pid, event, **kw)
        self.exit(hook_pid)
        return ev

    def detection(self, related: Ev, rule: str = "R1") -> Ev:
        return self.add("detection", related.pid, dt=0, rule_id=rule, related_event_seq=related.seq)
