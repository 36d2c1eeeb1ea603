"""Loss is never silent: a ring too small for the burst shows up in meta, run_finished and status."""

from __future__ import annotations

import signal

import pytest
from daemon_helpers import EXEC_ONLY, Client, DaemonHandle, HeldChild, private_home, running_daemon, start_run
from dtutil import lines, meta

from logira.daemon import protocol as p

pytestmark = pytest.mark.bpf

# 100 execs with ~2 KiB of argv each while the daemon is stopped: far more than an 8 KiB ring holds
BURST = 'a=$(printf "%02000d" 0); i=0; while [ $i -lt 100 ]; do /bin/true "$a"; i=$((i+1)); done'


def _run_with_daemon_stopped(d: DaemonHandle, c: Client, child: HeldChild) -> p.DaemonMsg:
    """Let the held child run while the daemon is SIGSTOPped (a consumer that cannot keep up,
    deterministically), then end the run and return the daemon's answer."""
    assert d.proc is not None
    d.proc.send_signal(signal.SIGSTOP)
    try:
        child.release()
        rc = child.wait(60)
    finally:
        d.proc.send_signal(signal.SIGCONT)
    c.send(p.AgentExited(exit_code=rc))
    return c.recv(30)


def test_kernel_drops_mark_the_run_incomplete(require_bpf: None) -> None:
    with (
        running_daemon(probes=EXEC_ONLY, extra_args=["--ring-bytes", "8192"]) as d,
        private_home() as home,
    ):
        with d.client() as c:
            child = HeldChild(["/bin/sh", "-c", BURST])
            started = start_run(c, child, home, ["burst"])
            fin = _run_with_daemon_stopped(d, c, child)
        assert isinstance(fin, p.RunFinished), fin
        run_dir = home / "runs" / started.run_id
        m = meta(run_dir)
        drops = m["drops"]
        assert drops["kernel_total"] > 0 and drops["kernel_total"] == sum(drops["kernel"].values())
        assert drops["total"] == drops["kernel_total"] + drops["reader"] + drops["queue"] == fin.dropped
        assert (m["status"], m["complete"], fin.complete) == ("incomplete", False, False)
        assert m["incomplete_reasons"][0].startswith(f"kernel ring dropped {drops['kernel_total']} events")
        assert m["event_count"] == len(lines(run_dir))  # what was received is all stored
        assert d.status().drops["kernel_total"] >= drops["kernel_total"]
        assert '"event": "run_drops"' in d.log_text()


def test_back_pressure_pauses_the_reader_without_loss(require_bpf: None) -> None:
    n = 300
    with (
        running_daemon(probes=EXEC_ONLY, config_text="queue_high = 16\nqueue_low = 4\n") as d,
        private_home() as home,
    ):
        with d.client() as c:
            child = HeldChild(
                ["/bin/sh", "-c", f"i=0; while [ $i -lt {n} ]; do /bin/true $i; i=$((i+1)); done"]
            )
            started = start_run(c, child, home, ["burst"])
            # stopped while the burst runs, the daemon then finds ~900 records in the (16 MiB) ring at
            # once: far over queue_high, so the reader must pause and resume, and nothing may be lost
            fin = _run_with_daemon_stopped(d, c, child)
        assert isinstance(fin, p.RunFinished) and (fin.complete, fin.dropped) == (True, 0), fin
        recs = lines(home / "runs" / started.run_id)
        assert [
            r["data_json"]["argv"][1]
            for r in recs
            if r["type"] == "exec" and r["data_json"]["argv"][0] == "/bin/true"
        ] == [str(i) for i in range(n)]
        assert d.status().reader_pauses > 0  # the watermark was crossed and the reader resumed
