"""Active runs: start, end, finalize. The SessionManager owns every run of the daemon.

A run is: admitted (daemon/admission.py) → its files and sinks opened (daemon/runfiles.py) →
its pipeline registered with the router by run cgroup id → tracked → the held pid moved in.
Each run then lives in its own task group (its pipeline's consumer and its lifecycle), owned by
the daemon's task group (`bind`). It ends when its owner said `agent_exited` (or its
connection dropped) and its cgroup tree is empty, or after the straggler wait; it is then
drained, untracked, drained again and finalized (daemon/finalize.py). If a stage of the run
fails outright, the run is finalized as incomplete with the failure and its queued events
counted as lost; the daemon and the other runs carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from logira import cgroup2
from logira.daemon import finalize
from logira.daemon import protocol as p
from logira.daemon.admission import StartError, StartPlan, check_request, initial_meta, plan
from logira.daemon.config import DaemonConfig
from logira.daemon.guard import GuardError, HeldPid
from logira.daemon.hookpeer import MAX_HOOKS_PER_RUN, HookCounters, hook_record, run_key_of
from logira.daemon.logging import get as get_logger
from logira.daemon.registry import Registry, RegistryEntry
from logira.daemon.rulecache import RuleCache, RulesRefused
from logira.daemon.runfiles import RunFiles, RunFilesError, open_run_files
from logira.detect.engine import Detector
from logira.format.meta import RunMeta
from logira.model.proctree import ProcessTree
from logira.pipeline.filecheck import FileChecker
from logira.pipeline.router import Router
from logira.pipeline.sensitive import sensitive_identities
from logira.pipeline.session import RunPipeline
from logira.sinks.journald import Journal

__all__ = ["Peer", "SessionManager", "StartError"]

log = get_logger()
SHUTDOWN_RUN_S = 15.0  # a run still finalizing after this, at shutdown, is left to crash recovery


class Peer(Protocol):
    pid: int
    uid: int
    gid: int

    async def send(self, msg: p.Msg) -> bool: ...


class Tracker(Protocol):
    """What the session manager needs of the probes."""

    def track(self, run_cgroup_id: int) -> None: ...

    def untrack(self, run_cgroup_id: int) -> None: ...

    def drop_counts(self) -> dict[str, int]: ...


class Source(Protocol):
    """What the session manager needs of the ring reader: drain it now, and its decode errors."""

    decode_errors: int

    def drain(self) -> int: ...


# seconds a finished run waits for its TCP connections to close (a FIN round trip)
CONN_LINGER_S = 3.0


@dataclass(eq=False)
class ActiveRun:
    key: str  # unique daemon-wide (cgroup dir name)
    plan: StartPlan
    run_id: str
    cg_path: Path
    cg_id: int
    files: RunFiles
    pipeline: RunPipeline
    tree: ProcessTree
    meta: RunMeta
    owner: Peer | None
    baseline: finalize.Baseline
    end_requested: asyncio.Event = field(default_factory=asyncio.Event)
    interrupted: bool = False
    client_exit: tuple[int, int] | None = None
    t_end: float = 0.0  # monotonic time the end was requested (for the timing fields of run_finished)
    finished: p.RunFinished | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    hooks: HookCounters = field(default_factory=HookCounters)
    closing: bool = False  # finalize has begun: records appended now would miss the sinks

    @property
    def uid(self) -> int:
        return self.plan.uid

    @property
    def root_pid(self) -> int:
        return self.plan.msg.pid

    @property
    def start_ts(self) -> int:
        return self.plan.now_ns


class SessionManager:
    def __init__(self, cfg: DaemonConfig, probes: Tracker, cg_mount: Path, state_dir: Path, *,
                 router: Router, journal: Journal | None = None, otlp: Any = None) -> None:  # fmt: skip
        self.cfg = cfg
        self.probes = probes
        self.router = router
        self.journal = journal
        self.otlp = otlp  # sinks.otlp.OtlpExporter (daemon-wide) when otlp_endpoint is set
        self.source: Source | None = None  # set by the daemon once the reader exists (drained at run ends)
        self.cg_mount = cg_mount
        self.cg_parent = cgroup2.ensure_parent(cg_mount, cfg.cgroup_parent)
        self.state_dir = state_dir
        self.registry = Registry(state_dir)
        self.rules = RuleCache(cfg.site_rules_dir)
        self.runs: dict[str, ActiveRun] = {}
        self.shutting_down = False
        self._counter = 0
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the runs' task groups, children of the daemon's
        self._starting: dict[int, int] = {}  # uid -> start_runs in progress (counted by the limits)
        # agent_hook messages since start: recorded in a run, refused by a run (closing, over its cap),
        # and from senders outside every active run (hooks installed, agent not under `logira run`)
        self.hooks_recorded = 0
        self.hooks_refused = 0
        self.hooks_unrouted = 0

    def bind(self, tg: asyncio.TaskGroup) -> None:
        """The daemon's task group: it owns every run's task group."""
        self._tg = tg

    # -- counters for status ---------------------------------------------------------------

    @property
    def unrouted(self) -> int:
        return self.router.unrouted

    @property
    def queue_drops(self) -> int:
        """Events lost in user space since the daemon started (ended runs + active ones)."""
        return self.router.lost + sum(r.pipeline.errors for r in self.runs.values())

    @property
    def pauses(self) -> int:
        return self.router.flow.pauses

    def rules_problem(self) -> str:
        return self.rules.problem()

    # -- start -------------------------------------------------------------------------------

    def _run_prefix(self) -> str:
        return f"/{self.cfg.cgroup_parent}/"

    def _check_limits(self, uid: int) -> None:
        if len(self.runs) + sum(self._starting.values()) >= self.cfg.max_runs_total:
            raise StartError(f"too many concurrent runs (limit={self.cfg.max_runs_total})")
        mine = sum(1 for r in self.runs.values() if r.uid == uid) + self._starting.get(uid, 0)
        if mine >= self.cfg.max_runs_per_uid:
            raise StartError(f"too many concurrent runs for uid {uid} (limit={self.cfg.max_runs_per_uid})")

    def _hold(self, peer: Peer, pid: int) -> HeldPid:
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

    async def start_run(self, peer: Peer, msg: p.StartRun) -> p.RunStarted:
        """Validate, create the run dir and cgroup, track, move the held pid in. Raises StartError."""
        if self.shutting_down:
            raise StartError("logirad is shutting down")
        check_request(self.cfg, msg)
        if any(r.owner is peer for r in self.runs.values()):
            raise StartError("this connection already has a run")
        if any(r.root_pid == msg.pid for r in self.runs.values()):
            raise StartError(f"pid {msg.pid} is already in a run")
        held = self._hold(peer, msg.pid)
        try:
            self._check_limits(peer.uid)
            try:
                rules = await self.rules.for_run(msg)
            except RulesRefused as exc:
                raise StartError(str(exc)) from None
            self._check_limits(peer.uid)  # other starts may have taken slots meanwhile
            admitted = plan(msg, peer.uid, peer.gid, rules)
            # Reserve the slot before the next await so limits stay exact under concurrency.
            self._starting[peer.uid] = self._starting.get(peer.uid, 0) + 1
            try:
                return await self._start(peer, admitted, held)
            finally:
                self._starting[peer.uid] -= 1
                if not self._starting[peer.uid]:
                    del self._starting[peer.uid]
        finally:
            held.close()

    @staticmethod
    def _file_checker(sp: StartPlan) -> FileChecker | None:
        """Receipt checks of file records, with the identities of the user's sensitive files
        (stat'ed now through O_NOFOLLOW dirfds) to match them under any name (filecheck.py)."""
        if not sp.domains.get("file", True) or not sp.passwd_home:
            return None
        return FileChecker(sensitive_identities(sp.passwd_home))

    def _pipeline(self, sp: StartPlan, files: RunFiles, tree: ProcessTree) -> RunPipeline:
        try:
            detector = (Detector(sp.rules, home=sp.passwd_home or sp.home, workspace=sp.cwd, tree=tree)
                        if sp.rules is not None else None)  # fmt: skip
        except Exception as exc:  # a broken engine must refuse the run, not record it blind
            raise StartError(f"detection engine: {type(exc).__name__}: {exc}") from None
        return RunPipeline(run_id=files.run_id, chain=files.chain, sinks=files.sinks(self.journal, {
            "pid": sp.msg.pid, "cgroup": ""}, self.otlp, self.cfg.otlp_finish_wait, self.cfg.new_egress_detection), detector=detector, tree=tree, domains=sp.domains,
            file_checker=self._file_checker(sp),
            flow=self.router.flow, flush_interval=self.cfg.flush_interval)  # fmt: skip

    async def _start(self, peer: Peer, sp: StartPlan, held: HeldPid) -> p.RunStarted:
        self._counter += 1
        key = f"r{os.getpid()}-{self._counter}-{sp.uid}"
        try:
            files = open_run_files(sp.home, sp.uid, sp.gid, sp.msg.tool, sp.now_ns, self.state_dir)
        except RunFilesError as exc:
            raise StartError(str(exc)) from None
        meta = initial_meta(sp, files.run_id, files.display_path)
        run: ActiveRun | None = None
        cg_path: Path | None = None
        try:
            tree = ProcessTree()
            pipeline = self._pipeline(sp, files, tree)
            files.write_meta(meta, durable=False)  # the start meta: crash recovery rewrites it
            await pipeline.open(meta)
            cg_path = cgroup2.create(self.cg_parent, key)
            cg_id = cgroup2.cgroup_id(cg_path)
            run = ActiveRun(key=key, plan=sp, run_id=files.run_id, cg_path=cg_path, cg_id=cg_id, files=files,
                            pipeline=pipeline, tree=tree, meta=meta, owner=peer,
                            baseline=finalize.Baseline(self._kernel_drops(), self._reader_errors()))  # fmt: skip
            self.registry.add(key, RegistryEntry(uid=sp.uid, gid=sp.gid, home=sp.home, run_id=files.run_id,
                                                 cgroup=str(cg_path), root_pid=sp.msg.pid, start_ts=sp.now_ns))
            self.runs[key] = run
            self.router.add(cg_id, pipeline)
            # Track BEFORE moving the pid so the agent's first instruction is already recorded.
            self.probes.track(cg_id)
            try:
                # re-verified through the pidfd right before and after the write (guard.HeldPid)
                held.move_into(cg_path, peer.pid, peer.uid, self._run_prefix())
            except GuardError as exc:
                raise StartError(str(exc)) from None
            except OSError as exc:
                raise StartError(f"cannot move pid {sp.msg.pid} into the run cgroup: {exc.strerror}") from None
            self._spawn(run)
        except BaseException as exc:
            await self._abort_start(key, files, meta, run, cg_path, exc)
            if isinstance(exc, StartError):
                raise
            if isinstance(exc, Exception):  # OSError, ProbeError, storage errors: one line for the client
                raise StartError(f"start failed: {exc}") from None
            raise
        log.info("run_started", run_id=run.run_id, uid=sp.uid, user=sp.user, pid=sp.msg.pid, tool=sp.msg.tool,
                 run_dir=files.display_path, cgroup=str(cg_path))  # fmt: skip
        return p.RunStarted(run_id=run.run_id, run_dir=files.display_path)

    def _spawn(self, run: ActiveRun) -> None:
        if self._tg is None:
            raise StartError("logirad is not serving yet")
        task = self._tg.create_task(self._life(run), name=f"run-{run.run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        """Cancel the runs still alive (after the shutdown deadline; their registry entries stay)."""
        for task in list(self._tasks):
            task.cancel()

    async def _abort_start(self, key: str, files: RunFiles, meta: RunMeta, run: ActiveRun | None,
                           cg_path: Path | None, exc: BaseException) -> None:  # fmt: skip
        if run is not None:  # never spawned: its consumer did not run
            self.runs.pop(key, None)
            self.router.remove(run.cg_id)
            with contextlib.suppress(Exception):
                self.probes.untrack(run.cg_id)
            run.pipeline.queue.clear()  # events of the moment the start failed in: the run never was
        meta.status = "incomplete"
        meta.end_ts = time.time_ns()
        meta.incomplete_reasons = [f"start failed: {exc}"]
        with contextlib.suppress(Exception):
            await self._close_files(files, meta, run.pipeline if run is not None else None)
        if cg_path is not None:
            with contextlib.suppress(Exception):
                cgroup2.kill_all(cg_path)
                cgroup2.remove(cg_path)
        self.registry.remove(key)
        log.error("run_start_failed", run_id=files.run_id, error=str(exc))

    async def _close_files(self, files: RunFiles, meta: RunMeta, pipe: RunPipeline | None) -> list[str]:
        errors = await pipe.close(meta) if pipe is not None else []
        if pipe is None:
            files.chain.close()
        return errors + await files.publish(meta)

    # -- agent hooks ---------------------------------------------------------------------------

    def agent_hook(self, peer: Peer, msg: p.AgentHook) -> p.HookAck:
        """`logira hook`: record the message in the sender's run, found by its cgroup (never by the message)."""
        key = run_key_of(peer.pid, self._run_prefix())
        run = self.runs.get(key) if key else None
        if run is None:
            self.hooks_unrouted += 1
            return p.HookAck(recorded=False, reason="the sender is not in an active run")
        if run.closing or run.hooks.received >= MAX_HOOKS_PER_RUN:
            run.hooks.refused += 1
            self.hooks_refused += 1
            return p.HookAck(recorded=False, reason="the run does not accept more hook messages")
        self._drain_source()  # kernel events up to now come first in seq order
        rec = hook_record(msg.agent, msg.payload, msg.payload_bytes, peer.pid, peer.uid, time.time_ns())
        run.pipeline.append_record(rec)
        run.hooks.received += 1
        self.hooks_recorded += 1
        if rec.data_json.error:  # type: ignore[union-attr]
            run.hooks.errors += 1
        return p.HookAck(recorded=True)

    async def _new_egress(self, run: ActiveRun) -> None:
        """The optional new-egress-destination detections, appended before the run closes."""
        pipe = run.pipeline
        col = next((s for s in pipe.fanout.sinks if s.name == "egress"), None)
        if col is None:
            return
        from logira.daemon.egress import judge

        await pipe.fanout.drain()  # the collector has seen every batch written so far
        try:
            recs = await asyncio.to_thread(judge, self.state_dir, run.uid, run.meta.cwd, col, run.run_id, run.tree)
        except Exception as exc:  # an optional hint must never fail the run
            log.error("new_egress_failed", run_id=run.run_id, error=f"{type(exc).__name__}: {exc}")
            return
        for rec in recs:
            pipe.append_record(rec)
        if recs:
            await pipe.wait_idle()

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

    # -- end ---------------------------------------------------------------------------------

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

    async def _life(self, run: ActiveRun) -> None:
        """The run's task group: its pipeline's consumer and its lifecycle. A failure of either is
        this run's, reported and finalized as incomplete; it never reaches the daemon's group."""
        failure = ""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(run.pipeline.run(), name=f"pipeline-{run.run_id}")
                tg.create_task(self._lifecycle(run), name=f"lifecycle-{run.run_id}")
        except* Exception as group:
            failure = "; ".join(f"{type(e).__name__}: {e}" for e in group.exceptions)
        if failure and not run.done.is_set():
            await self._fail(run, failure)

    async def _lifecycle(self, run: ActiveRun) -> None:
        await run.end_requested.wait()
        run.t_end = time.monotonic()
        stragglers = await self._wait_tree(run)
        await self._finalize(run, stragglers)

    async def _wait_tree(self, run: ActiveRun) -> list[int]:
        """Wait for the run's process tree to be gone; returns the stragglers (killed or left)."""
        deadline = time.monotonic() + self.cfg.straggler_wait if run.client_exit is not None else None
        while cgroup2.populated(run.cg_path):
            if run.interrupted or (deadline is not None and time.monotonic() >= deadline):
                stragglers = sorted(set(cgroup2.procs(run.cg_path)))
                if self.cfg.straggler_action == "kill" or run.interrupted:
                    cgroup2.kill_all(run.cg_path)
                    await self._wait_empty(run.cg_path, 2.0)
                return stragglers
            await asyncio.sleep(0.05)
        return []

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
        return int(getattr(self.source, "decode_errors", 0) or 0)

    def _drain_source(self) -> None:
        if self.source is not None:
            self.source.drain()

    async def _await_connections(self, run: ActiveRun) -> int:
        """Wait (bounded) for the run's TCP connections to reach TCP_CLOSE: the processes are
        gone, but a connection's end (and its close record with the bytes) comes one round trip
        after the kernel sent its FIN. Returns how many are still open; they are forgotten."""
        count = getattr(self.probes, "open_connections", None)
        if count is None:
            return 0
        deadline = time.monotonic() + CONN_LINGER_S
        while count(run.cg_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self._drain_source()
        return count(run.cg_id, forget=True)

    async def _finalize(self, run: ActiveRun, stragglers: list[int], failure: str = "") -> None:
        pipe = run.pipeline
        t_fin = time.monotonic()
        unclosed = 0
        if not failure:
            self._drain_source()
            await pipe.wait_idle()
            unclosed = await self._await_connections(run)
        self.probes.untrack(run.cg_id)
        agents: dict[str, Any] = {}
        if not failure:
            self._drain_source()
            run.closing = True  # hook messages from now on are refused (and counted), not lost
            await pipe.wait_idle()
            agents = await self._join_agents(run)
            await self._new_egress(run)
            await pipe.stop()
        self.router.remove(run.cg_id)
        lost_queued = len(pipe.queue)  # a failed consumer left these behind: lost, and counted
        pipe.queue.clear()
        pipe.errors += lost_queued
        self.router.lost += pipe.errors
        kernel_now = self._kernel_drops()
        if unclosed:  # their close record (outcome, bytes) will never be in this run
            kernel_now["net_close"] = kernel_now.get("net_close", 0) + unclosed
        drops = finalize.drops(run.baseline, kernel_now, self._reader_errors(), pipe)
        exit_code, exit_signal = finalize.exit_status(run.tree, run.root_pid, run.client_exit)
        meta = finalize.final_meta(run.meta, pipe, drops, exit_code=exit_code, exit_signal=exit_signal,
                                   stragglers=stragglers, interrupted=run.interrupted,
                                   failure=f"pipeline failed: {failure}" if failure else "")  # fmt: skip
        if agents:
            agents["hooks_refused"] = run.hooks.refused  # hooks refused while the join ran count too
            meta.agents = agents
        t_files = time.monotonic()
        for err in await self._close_files(run.files, meta, pipe):
            log.error("run_files_error", run_id=run.run_id, error=err)
        if not cgroup2.remove(run.cg_path):
            log.warning("cgroup_busy", run_id=run.run_id, cgroup=str(run.cg_path))
        self.registry.remove(run.key)
        self.runs.pop(run.key, None)
        run.finished = p.RunFinished(run_id=run.run_id, run_dir=run.files.display_path, events=pipe.event_count,
                                     detections=meta.suspicious_count, dropped=drops.total,
                                     complete=meta.complete, stragglers=stragglers, status=meta.status)  # fmt: skip
        run.done.set()
        log.info("run_finished", run_id=run.run_id, uid=run.uid, status=meta.status, events=pipe.event_count,
                 detections=meta.suspicious_count, dropped=drops.total, stragglers=stragglers,
                 exit_code=exit_code, exit_signal=exit_signal, filtered=sum(pipe.filtered.values()),
                 ms_wait=round(1000 * (t_fin - run.t_end)), ms_drain=round(1000 * (t_files - t_fin)),
                 ms_files=round(1000 * (time.monotonic() - t_files)))  # fmt: skip
        if drops.total:
            log.warning("run_drops", run_id=run.run_id, kernel=drops.kernel_total, reader=drops.reader,
                        queue=drops.queue)  # fmt: skip
        for exporter, losses in meta.export_losses.items():  # the record is complete; its exported copy is short
            log.warning("export_losses", run_id=run.run_id, exporter=exporter, **losses,
                        last_error=getattr(self.otlp, "last_error", ""))  # fmt: skip
        if run.owner is not None:
            await run.owner.send(run.finished)

    async def _fail(self, run: ActiveRun, failure: str) -> None:
        """A stage of the run failed outright: finalize it as incomplete, saying why."""
        log.error("run_pipeline_failed", run_id=run.run_id, error=failure)
        try:
            if cgroup2.populated(run.cg_path):
                run.interrupted = True
                cgroup2.kill_all(run.cg_path)
                await self._wait_empty(run.cg_path, 2.0)
            await self._finalize(run, [], failure=failure)
        except Exception as exc:
            err = f"{type(exc).__name__}: {exc}"
            log.error("run_finalize_failed", run_id=run.run_id, error=err)
            self.runs.pop(run.key, None)
            self.router.remove(run.cg_id)
            with contextlib.suppress(Exception):
                self.probes.untrack(run.cg_id)
            # the registry entry stays: the next daemon start closes this run as incomplete
            run.done.set()
            if run.owner is not None:
                await run.owner.send(p.Error(message=f"run {run.run_id} could not be finalized: {err}"))

    # -- follow / status helpers ---------------------------------------------------------------

    def find_for_follow(self, uid: int, run_id: str) -> ActiveRun | None:
        mine = [r for r in self.runs.values() if uid == 0 or r.uid == uid]
        if run_id == "last":
            own = [r for r in mine if r.uid == uid] or mine
            return max(own, key=lambda r: r.start_ts, default=None)
        return next((r for r in mine if r.run_id == run_id), None)

    def visible_runs(self, uid: int) -> list[p.ActiveRun]:
        return [
            p.ActiveRun(run_id=r.run_id, uid=r.uid, root_pid=r.root_pid, run_dir=r.files.display_path,
                        start_ts=r.start_ts, events=r.pipeline.event_count, cgroup=str(r.cg_path))
            for r in sorted(self.runs.values(), key=lambda r: r.start_ts)
            if uid == 0 or r.uid == uid
        ]

    # -- shutdown ------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """SIGTERM/SIGINT: finalize every active run as interrupted, bounded as a whole."""
        self.shutting_down = True
        runs = list(self.runs.values())
        for run in runs:
            run.interrupted = True
            run.end_requested.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_RUN_S):
                for run in runs:
                    await run.done.wait()
