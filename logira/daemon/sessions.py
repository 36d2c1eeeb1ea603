"""Active runs: start, route kernel events, decide when a run ends, finalize.

The SessionManager owns every run of the daemon. Kernel events arrive in batches from the
RingReader (`on_batch`) and are routed by `run_cgroup_id` to the run's pipeline; unknown
ids are counted as `unrouted`. A run ends when its owner said `agent_exited` (or its
connection dropped) and its cgroup tree is empty, or after the straggler wait; it is then
drained, untracked, drained again and finalized (meta, SQLite, seal, hand-over).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import pwd
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from logira import __version__, cgroup2
from logira.daemon import protocol as p
from logira.daemon.config import DaemonConfig
from logira.daemon.guard import GuardError, HeldPid, check_sizes
from logira.daemon.hookpeer import MAX_HOOKS_PER_RUN, HookCounters, hook_record, run_key_of
from logira.daemon.logging import get as get_logger
from logira.daemon.outcome import Losses, outcome
from logira.daemon.registry import Registry, RegistryEntry
from logira.daemon.runfiles import RunFiles, RunFilesError, open_run_files
from logira.errors import LogiraError
from logira.model.kernel import AnyKernelEvent
from logira.model.proctree import ProcessTree
from logira.model.record import Record
from logira.pipeline.session import RunPipeline
from logira.storage.runids import sanitize_tool

log = get_logger()


class StartError(LogiraError):
    """start_run refused: the message goes back to the client as one line."""


class Peer(Protocol):
    pid: int
    uid: int
    gid: int

    async def send(self, msg: p.Msg) -> bool: ...


@dataclass(eq=False)
class ActiveRun:
    key: str  # unique daemon-wide (cgroup dir name)
    run_id: str
    uid: int
    gid: int
    user: str
    home: str
    root_pid: int
    cg_path: Path
    cg_id: int
    files: RunFiles
    pipeline: RunPipeline
    tree: ProcessTree
    meta: dict[str, Any]
    owner: Peer | None
    kernel_base: dict[str, int]
    reader_base: int
    start_ts: int
    end_requested: asyncio.Event = field(default_factory=asyncio.Event)
    interrupted: bool = False
    client_exit: tuple[int, int] | None = None
    t_end: float = 0.0  # monotonic time the end was requested (for the timing fields of run_finished)
    finished: p.RunFinished | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    hooks: HookCounters = field(default_factory=HookCounters)
    closing: bool = False  # finalize has begun: records appended now would miss the sinks


class SessionManager:
    def __init__(self, cfg: DaemonConfig, probes: Any, cg_mount: Path, state_dir: Path) -> None:
        self.cfg = cfg
        self.probes = probes
        self.reader: Any = None
        self.cg_mount = cg_mount
        self.cg_parent = cgroup2.ensure_parent(cg_mount, cfg.cgroup_parent)
        self.state_dir = state_dir
        self.registry = Registry(state_dir)
        self.by_cg: dict[int, ActiveRun] = {}
        self.runs: dict[str, ActiveRun] = {}
        self.unrouted = 0
        self.queue_drops = 0  # user space never drops; kept so the counter exists and is reported
        self.paused = False
        self.pauses = 0
        self.shutting_down = False
        self._counter = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._default_rules: Any = None
        self._rules_lock = asyncio.Lock()
        self._starting: dict[int, int] = {}  # uid -> start_runs in progress (counted by the limits)
        self.hooks_unrouted = 0  # agent_hook messages from senders outside every active run

    # -- routing ------------------------------------------------------------------------

    def on_batch(self, events: list[AnyKernelEvent]) -> None:
        """RingReader callback: route each event to its run, pause the reader on back-pressure."""
        by_cg = self.by_cg
        for ev in events:
            run = by_cg.get(ev.run_cgroup_id)
            if run is None:
                self.unrouted += 1
            else:
                run.pipeline.enqueue(ev)
        if not self.paused and any(len(r.pipeline) > self.cfg.queue_high for r in self.runs.values()):
            self._pause()

    def _on_drain(self) -> None:
        if self.paused and all(len(r.pipeline) < self.cfg.queue_low for r in self.runs.values()):
            self._resume()

    def _pause(self) -> None:
        # The kernel ring absorbs the burst meanwhile; what it cannot hold is counted there.
        self.paused = True
        self.pauses += 1
        if self.reader is not None:
            self.reader.pause()

    def _resume(self) -> None:
        self.paused = False
        if self.reader is not None:
            self.reader.resume()

    # -- start --------------------------------------------------------------------------

    def _check_pid(self, peer: Peer, pid: int) -> HeldPid:
        """Pin the held pid (pidfd) and check it is the peer's own child with exactly its uid."""
        try:
            held = HeldPid(pid)
        except GuardError as exc:
            raise StartError(str(exc)) from None
        try:
            held.verify(peer.pid, peer.uid, self._run_prefix())
        except GuardError as exc:
            held.close()
            raise StartError(str(exc)) from None
        return held

    def _run_prefix(self) -> str:
        return f"/{self.cfg.cgroup_parent}/"

    def _check_limits(self, uid: int) -> None:
        if len(self.runs) + sum(self._starting.values()) >= self.cfg.max_runs_total:
            raise StartError(f"too many concurrent runs (limit={self.cfg.max_runs_total})")
        mine = sum(1 for r in self.runs.values() if r.uid == uid) + self._starting.get(uid, 0)
        if mine >= self.cfg.max_runs_per_uid:
            raise StartError(f"too many concurrent runs for uid {uid} (limit={self.cfg.max_runs_per_uid})")

    def _rules(self, msg: p.StartRun) -> Any:
        try:
            from logira.detect.loader import load_rules
        except ImportError:
            return None
        site = Path(self.cfg.site_rules_dir)
        site_dir = site if site.is_dir() else None
        try:
            if not msg.rules_yaml:
                if self._default_rules is None:
                    self._default_rules = load_rules(builtin=True, site_dir=site_dir)
                return self._default_rules
            return load_rules(
                builtin=True, site_dir=site_dir, extra=[(msg.rules_path or "rules", msg.rules_yaml)]
            )
        except Exception as exc:  # RuleError: one line naming file:line
            raise StartError(f"rules: {exc}") from None

    def rules_problem(self) -> str:
        """Why the default ruleset cannot be loaded ("" when it can), for `status`."""
        try:
            self._rules(p.StartRun(tool="", argv=["-"], cwd="/", pid=0))
        except StartError as exc:
            return str(exc)
        return ""

    def _detector(self, rules: Any, home: str, workspace: str, tree: ProcessTree) -> Any:
        if rules is None:
            return None
        from logira.detect.engine import Detector

        return Detector(rules, home=home, workspace=workspace, tree=tree)

    async def start_run(self, peer: Peer, msg: p.StartRun) -> p.RunStarted:
        """Validate, create the run dir and cgroup, track, move the held pid in. Raises StartError."""
        if self.shutting_down:
            raise StartError("logirad is shutting down")
        if not msg.argv:
            raise StartError("argv is empty")
        try:
            check_sizes(
                argv=msg.argv,
                cwd=msg.cwd,
                home=msg.home,
                rules_path=msg.rules_path,
                tool=msg.tool,
                rules_yaml=msg.rules_yaml,
            )
        except GuardError as exc:
            raise StartError(str(exc)) from None
        if msg.pid <= 1:
            raise StartError(f"invalid pid {msg.pid}")
        if any(r.owner is peer for r in self.runs.values()):
            raise StartError("this connection already has a run")
        if any(r.root_pid == msg.pid for r in self.runs.values()):
            raise StartError(f"pid {msg.pid} is already in a run")
        for dom in ("exec", "file", "net"):
            if getattr(msg, dom) and not getattr(self.cfg, dom):
                raise StartError(
                    f"logirad runs without the {dom} probes; pass --no-{dom} or enable {dom} in logirad.toml"
                )
        held = self._check_pid(peer, msg.pid)
        try:
            return await self._start_checked(peer, msg, held)
        finally:
            held.close()

    async def _start_checked(self, peer: Peer, msg: p.StartRun, held: HeldPid) -> p.RunStarted:
        self._check_limits(peer.uid)
        uid, gid = peer.uid, peer.gid
        try:
            pw = pwd.getpwuid(uid)
            user, passwd_home = pw.pw_name, pw.pw_dir
        except KeyError:
            user, passwd_home = str(uid), ""
        if msg.home:
            if not os.path.isabs(msg.home):
                raise StartError(f"home must be an absolute path, not {msg.home!r}")
            home = os.path.normpath(msg.home)
        elif passwd_home:
            home = os.path.join(passwd_home, ".logira")
        else:
            raise StartError(f"uid {uid} has no home directory; set LOGIRA_HOME")
        if msg.rules_yaml:
            # A user's rules file is parsed off the event loop, one at a time: up to 256 KiB of YAML
            # takes ~0.6 s, which on the loop would stall the ring reader for every other run.
            async with self._rules_lock:
                rules = await asyncio.to_thread(self._rules, msg)
            self._check_limits(peer.uid)  # other starts may have taken slots meanwhile
        else:
            rules = self._rules(msg)
        cwd = msg.cwd if os.path.isabs(msg.cwd) else "/"
        now = time.time_ns()
        tree = ProcessTree()
        try:
            detector = self._detector(rules, passwd_home or home, cwd, tree)
        except Exception as exc:  # a broken engine must refuse the run, not record it blind
            raise StartError(f"detection engine: {type(exc).__name__}: {exc}") from None
        # Reserve the slot before the first await so limits stay exact under concurrency.
        self._starting[uid] = self._starting.get(uid, 0) + 1
        try:
            return await self._start(peer, msg, uid, gid, user, home, cwd, now, tree, rules, detector, held)
        finally:
            self._starting[uid] -= 1
            if not self._starting[uid]:
                del self._starting[uid]

    async def _start(
        self,
        peer: Peer,
        msg: p.StartRun,
        uid: int,
        gid: int,
        user: str,
        home: str,
        cwd: str,
        now: int,
        tree: ProcessTree,
        rules: Any,
        detector: Any,
        held: HeldPid,
    ) -> p.RunStarted:
        self._counter += 1
        key = f"r{os.getpid()}-{self._counter}-{uid}"
        try:
            files = open_run_files(home, uid, gid, msg.tool, now, self.state_dir)
        except RunFilesError as exc:
            raise StartError(str(exc)) from None
        run_id = files.run_id
        meta = self._initial_meta(msg, run_id, uid, gid, user, cwd, now, rules)
        meta["run_dir"] = files.display_path  # canonical (no symlinks: every component was O_NOFOLLOW)
        cg_path: Path | None = None
        try:
            await files.open_sqlite(meta)
            cg_path = cgroup2.create(self.cg_parent, key)
            cg_id = cgroup2.cgroup_id(cg_path)
            pipeline = RunPipeline(
                run_id=run_id,
                jsonl=files.jsonl,
                sqlite=files.sqlite,
                detector=detector,
                tree=tree,
                domains={"exec": msg.exec, "file": msg.file, "net": msg.net},
                jsonl_read_fd=files.jsonl_read_fd,
                flush_interval=self.cfg.flush_interval,
                on_detection=self._log_detection,
                on_drain=self._on_drain,
            )
            run = ActiveRun(
                key=key,
                run_id=run_id,
                uid=uid,
                gid=gid,
                user=user,
                home=home,
                root_pid=msg.pid,
                cg_path=cg_path,
                cg_id=cg_id,
                files=files,
                pipeline=pipeline,
                tree=tree,
                meta=meta,
                owner=peer,
                kernel_base=self._kernel_drops(),
                reader_base=self._reader_errors(),
                start_ts=now,
            )
            self.registry.add(
                key,
                RegistryEntry(
                    uid=uid,
                    gid=gid,
                    home=home,
                    run_id=run_id,
                    cgroup=str(cg_path),
                    root_pid=msg.pid,
                    start_ts=now,
                ),
            )
            self.by_cg[cg_id] = run
            self.runs[key] = run
            pipeline.start()
            # Track BEFORE moving the pid so the agent's first instruction is already recorded.
            self.probes.track(cg_id)
            try:
                # re-verified through the pidfd right before and after the write (guard.HeldPid)
                held.move_into(cg_path, peer.pid, peer.uid, self._run_prefix())
            except GuardError as exc:
                raise StartError(str(exc)) from None
            except OSError as exc:
                raise StartError(f"cannot move pid {msg.pid} into the run cgroup: {exc.strerror}") from None
            files.write_meta(meta)
        except BaseException as exc:
            await self._abort_start(key, files, meta, cg_path, exc)
            if isinstance(exc, StartError):
                raise
            if isinstance(exc, Exception):  # OSError, ProbeError, storage errors: one line for the client
                raise StartError(f"start failed: {exc}") from None
            raise
        task = asyncio.get_running_loop().create_task(self._lifecycle(run), name=f"life-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info(
            "run_started",
            run_id=run_id,
            uid=uid,
            user=user,
            pid=msg.pid,
            tool=msg.tool,
            run_dir=files.display_path,
            cgroup=str(cg_path),
        )
        return p.RunStarted(run_id=run_id, run_dir=files.display_path)

    def _initial_meta(
        self, msg: p.StartRun, run_id: str, uid: int, gid: int, user: str, cwd: str, now: int, rules: Any
    ) -> dict[str, Any]:
        return {
            "version": 4,
            "run_id": run_id,
            "tool": sanitize_tool(msg.tool),
            "command": " ".join(msg.argv),
            "command_argv": list(msg.argv),
            "cwd": cwd,
            "uid": uid,
            "gid": gid,
            "user": user,
            "host": os.uname().nodename,
            "run_dir": "",
            "start_ts": now,
            "end_ts": None,
            "status": "running",
            "complete": False,
            "exit_code": None,
            "exit_signal": None,
            "probes": {"exec": msg.exec, "file": msg.file, "net": msg.net},
            "counts": {},
            "detections": {},
            "suspicious_count": 0,
            "drops": {"kernel": {}, "kernel_total": 0, "reader": 0, "queue": 0, "total": 0},
            "filtered": {"exec": 0, "file": 0, "net": 0},
            "detect_errors": 0,
            "sqlite_missing": 0,
            "event_count": 0,
            "final_hash": "",
            "rules_sha256": getattr(rules, "sha256", "") or "",
            "custom_rules_path": msg.rules_path if msg.rules_yaml else "",
            "custom_rules_sha256": hashlib.sha256(msg.rules_yaml.encode()).hexdigest()
            if msg.rules_yaml
            else "",
            "logira_version": __version__,
            "kernel_release": os.uname().release,
            "stragglers": [],
            "root_pid": msg.pid,
            "incomplete_reasons": [],
        }

    async def _abort_start(
        self, key: str, files: RunFiles, meta: dict[str, Any], cg_path: Path | None, exc: BaseException
    ) -> None:
        run = self.runs.pop(key, None)
        if run is not None:
            self.by_cg.pop(run.cg_id, None)
            with contextlib.suppress(Exception):
                self.probes.untrack(run.cg_id)
            with contextlib.suppress(Exception):
                await run.pipeline.stop()
        meta["status"] = "incomplete"
        meta["end_ts"] = time.time_ns()
        meta["incomplete_reasons"] = [f"start failed: {exc}"]
        with contextlib.suppress(Exception):
            await files.finish(meta, self.state_dir)
        if cg_path is not None:
            with contextlib.suppress(Exception):
                cgroup2.kill_all(cg_path)
                cgroup2.remove(cg_path)
        self.registry.remove(key)
        log.error("run_start_failed", run_id=files.run_id, error=str(exc))

    # -- agent hooks ----------------------------------------------------------------------

    def agent_hook(self, peer: Peer, msg: p.AgentHook) -> p.HookAck:
        """`logira hook`: record the message in the sender's run, found by its cgroup (never by the message)."""
        key = run_key_of(peer.pid, self._run_prefix())
        run = self.runs.get(key) if key else None
        if run is None:
            self.hooks_unrouted += 1
            return p.HookAck(recorded=False, reason="the sender is not in an active run")
        if run.closing or run.hooks.received >= MAX_HOOKS_PER_RUN:
            run.hooks.refused += 1
            return p.HookAck(recorded=False, reason="the run does not accept more hook messages")
        if self.reader is not None:
            self.reader.drain()  # kernel events up to now come first in seq order
        rec = hook_record(msg.agent, msg.payload, msg.payload_bytes, peer.pid, peer.uid, time.time_ns())
        run.pipeline.append_record(rec)
        run.hooks.received += 1
        if rec.data_json.error:  # type: ignore[union-attr]
            run.hooks.errors += 1
        return p.HookAck(recorded=True)

    # -- end ----------------------------------------------------------------------------

    def agent_exited(self, peer: Peer, msg: p.AgentExited) -> None:
        """Only the connection that started the run can end its wait; raises StartError otherwise."""
        for run in self.runs.values():
            if run.owner is peer:
                run.client_exit = (msg.exit_code, msg.signal)
                run.end_requested.set()
                return
        raise StartError("no active run was started on this connection")

    def connection_lost(self, peer: Peer) -> None:
        """The owner went away: the run continues until its process tree is gone."""
        for run in self.runs.values():
            if run.owner is peer:
                run.owner = None
                log.info("run_owner_disconnected", run_id=run.run_id)
                run.end_requested.set()

    async def _lifecycle(self, run: ActiveRun) -> None:
        try:
            await run.end_requested.wait()
            run.t_end = time.monotonic()
            deadline = time.monotonic() + self.cfg.straggler_wait if run.client_exit is not None else None
            stragglers: list[int] = []
            while cgroup2.populated(run.cg_path):
                if run.interrupted or (deadline is not None and time.monotonic() >= deadline):
                    stragglers = sorted(set(cgroup2.procs(run.cg_path)))
                    if self.cfg.straggler_action == "kill" or run.interrupted:
                        cgroup2.kill_all(run.cg_path)
                        await self._wait_empty(run.cg_path, 2.0)
                    break
                await asyncio.sleep(0.05)
            await self._finalize(run, stragglers)
        except Exception as exc:
            err = f"{type(exc).__name__}: {exc}"
            log.error("run_finalize_failed", run_id=run.run_id, error=err)
            self.runs.pop(run.key, None)
            self.by_cg.pop(run.cg_id, None)
            with contextlib.suppress(Exception):
                self.probes.untrack(run.cg_id)
            # the registry entry stays: the next daemon start closes this run as incomplete
            run.done.set()
            if run.owner is not None:
                await run.owner.send(p.Error(message=f"run {run.run_id} could not be finalized: {err}"))

    async def _wait_empty(self, cg: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while cgroup2.populated(cg) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _kernel_drops(self) -> dict[str, int]:
        try:
            return dict(self.probes.drop_counts())
        except Exception:
            return {}

    def _reader_errors(self) -> int:
        return int(getattr(self.reader, "decode_errors", 0) or 0)

    async def _finalize(self, run: ActiveRun, stragglers: list[int]) -> None:
        pipe = run.pipeline
        t_fin = time.monotonic()
        if self.reader is not None:
            self.reader.drain()
        await pipe.wait_idle()
        self.probes.untrack(run.cg_id)
        if self.reader is not None:
            self.reader.drain()
        run.closing = True  # hook messages from now on are refused (and counted), not lost
        await pipe.wait_idle()
        agents = await self._join_agents(run)
        await pipe.stop()
        self.by_cg.pop(run.cg_id, None)
        now_drops = self._kernel_drops()
        kernel = {
            k: v - run.kernel_base.get(k, 0)
            for k, v in now_drops.items()
            if v - run.kernel_base.get(k, 0) > 0
        }
        kernel_total = sum(kernel.values())
        reader = max(0, self._reader_errors() - run.reader_base)
        queue = pipe.errors  # events lost in user space (conversion or JSONL write failures), never silent
        total = kernel_total + reader + queue
        meta = run.meta
        complete, reasons = outcome(
            Losses(
                kernel_total=kernel_total,
                reader=reader,
                queue=queue,
                detect_errors=pipe.detect_errors,
                sqlite_missing=pipe.sqlite_missing,
                interrupted=run.interrupted,
                last_error=pipe.last_error,
            )
        )
        info = run.tree.get(run.root_pid)
        if info is not None and info.exit_ts:
            exit_code, exit_signal = (info.exit_code if not info.exit_signal else None), info.exit_signal
        elif run.client_exit is not None:
            exit_code, exit_signal = (
                (run.client_exit[0] if not run.client_exit[1] else None),
                run.client_exit[1],
            )
        else:
            exit_code, exit_signal = None, 0
        if agents:
            agents["hooks_refused"] = run.hooks.refused  # hooks refused while the join ran count too
            meta["agents"] = agents
        meta.update(
            end_ts=time.time_ns(),
            exit_code=exit_code,
            exit_signal=exit_signal,
            counts=dict(pipe.counts),
            detections=dict(pipe.detections),
            suspicious_count=sum(pipe.detections.values()),
            drops={
                "kernel": kernel,
                "kernel_total": kernel_total,
                "reader": reader,
                "queue": queue,
                "total": total,
            },
            filtered=dict(pipe.filtered),
            detect_errors=pipe.detect_errors,
            sqlite_missing=pipe.sqlite_missing,
            event_count=pipe.event_count,
            final_hash=run.files.jsonl.last_hash,
            stragglers=stragglers,
            complete=complete,
            incomplete_reasons=reasons,
            status="interrupted" if run.interrupted else ("complete" if complete else "incomplete"),
        )
        t_files = time.monotonic()
        for err in await run.files.finish(meta, self.state_dir):
            log.error("run_files_error", run_id=run.run_id, error=err)
        if not cgroup2.remove(run.cg_path):
            log.warning("cgroup_busy", run_id=run.run_id, cgroup=str(run.cg_path))
        self.registry.remove(run.key)
        self.runs.pop(run.key, None)
        run.finished = p.RunFinished(
            run_id=run.run_id,
            run_dir=run.files.display_path,
            events=pipe.event_count,
            detections=meta["suspicious_count"],
            dropped=total,
            complete=complete,
            stragglers=stragglers,
            status=meta["status"],
        )
        run.done.set()
        log.info(
            "run_finished",
            run_id=run.run_id,
            uid=run.uid,
            status=meta["status"],
            events=pipe.event_count,
            detections=meta["suspicious_count"],
            dropped=total,
            stragglers=stragglers,
            exit_code=exit_code,
            exit_signal=exit_signal,
            filtered=sum(pipe.filtered.values()),
            ms_wait=round(1000 * (t_fin - run.t_end)),
            ms_drain=round(1000 * (t_files - t_fin)),
            ms_files=round(1000 * (time.monotonic() - t_files)),
        )
        if total:
            log.warning("run_drops", run_id=run.run_id, kernel=kernel_total, reader=reader, queue=queue)
        if run.owner is not None:
            await run.owner.send(run.finished)
        if self.paused:
            self._on_drain()

    async def _join_agents(self, run: ActiveRun) -> dict[str, Any]:
        """Tool calls joined to the kernel record (logira/agents); never fails the run."""
        from logira.agents.finalize import finalize_agents

        try:
            home = pwd.getpwuid(run.uid).pw_dir
        except KeyError:
            home = ""
        try:
            return await finalize_agents(
                run.pipeline, run.tree, read_fd=run.files.jsonl_read_fd, home=home, uid=run.uid,
                end_ts=time.time_ns(), hooks=run.hooks.as_dict(),
            )  # fmt: skip
        except Exception as exc:  # the record of the run matters more than the join
            log.error("agent_join_failed", run_id=run.run_id, error=f"{type(exc).__name__}: {exc}")
            return {**run.hooks.as_dict(), "join_errors": 1, "notes": [f"join failed: {type(exc).__name__}: {exc}"]}

    def _log_detection(self, rec: Record) -> None:
        d: Any = rec.data_json
        log.warning(
            "detection",
            run_id=rec.run_id,
            rule_id=d.rule_id,
            severity=d.severity,
            message=d.message,
            seq=rec.seq,
            related_seq=d.related_event_seq,
            pid=rec.pid,
        )

    # -- follow / status helpers ----------------------------------------------------------

    def find_for_follow(self, uid: int, run_id: str) -> ActiveRun | None:
        mine = [r for r in self.runs.values() if uid == 0 or r.uid == uid]
        if run_id == "last":
            own = [r for r in mine if r.uid == uid] or mine
            return max(own, key=lambda r: r.start_ts, default=None)
        return next((r for r in mine if r.run_id == run_id), None)

    def visible_runs(self, uid: int) -> list[p.ActiveRun]:
        return [
            p.ActiveRun(
                run_id=r.run_id,
                uid=r.uid,
                root_pid=r.root_pid,
                run_dir=r.files.display_path,
                start_ts=r.start_ts,
                events=r.pipeline.event_count,
                cgroup=str(r.cg_path),
            )
            for r in sorted(self.runs.values(), key=lambda r: r.start_ts)
            if uid == 0 or r.uid == uid
        ]

    # -- shutdown -----------------------------------------------------------------------

    async def shutdown(self) -> None:
        """SIGTERM/SIGINT: finalize every active run as interrupted."""
        self.shutting_down = True
        runs = list(self.runs.values())
        for run in runs:
            run.interrupted = True
            run.end_requested.set()
        for run in runs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.done.wait(), timeout=15)
