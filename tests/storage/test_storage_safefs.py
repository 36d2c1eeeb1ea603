"""RunDir and open_user_dir as root, against a real unprivileged user's home.

Every attack plants a symlink (or file/dir) where the daemon is about to write and asserts that
the symlink's target was not touched and that the error is one line naming the problem.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_samples import T0, sample_records

from logira.format.meta import RunMeta, encode_meta
from logira.sinks.jsonl import JsonlSink
from logira.sinks.sqlite import SqliteSink
from logira.storage.runids import base_run_id
from logira.storage.safefs import RunDir, RunDirError, UnsafePathError, open_runs_dir, open_user_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="RunDir tests need root")


class Home:
    def __init__(self, base: Path, user):
        self.base = base  # user-owned, 0755
        self.home = base / ".logira"
        self.runs = self.home / "runs"
        self.user = user
        self.target = base / "target"  # where attacks point; must stay untouched

    def chown(self, p: Path) -> None:
        os.lchown(p, self.user.uid, self.user.gid)


@pytest.fixture
def home(test_user, tmp_path: Path) -> Iterator[Home]:
    base = tmp_path / f"h-{secrets.token_hex(3)}"
    h = Home(base, test_user)
    for d in (base, h.home, h.runs, h.target):
        d.mkdir(mode=0o700)
        h.chown(d)
    os.chmod(base, 0o755)
    yield h


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _untouched(h: Home) -> None:
    assert os.listdir(h.target) == []
    st = os.stat(h.target)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (h.user.uid, 0o700)


def _owner_mode(fd_or_path, **kw) -> tuple[int, int, int]:
    st = os.stat(fd_or_path, **kw)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


async def test_run_dir_lifecycle(home: Home, state_dir: Path) -> None:
    uid, gid = home.user.uid, home.user.gid
    runs_fd = open_runs_dir(str(home.home), uid)
    rd = RunDir.create(runs_fd, "My Agent", uid, gid, T0, state_dir=state_dir)
    assert rd.run_id == base_run_id("My Agent", T0) and rd.display_path == str(home.runs / rd.run_id)
    assert _owner_mode(rd.fd) == (0, gid, 0o750)  # active: the user reads but cannot plant anything
    jfd = rd.create_file("events.jsonl")
    sink = JsonlSink(jfd, rd.run_id)
    meta = RunMeta(run_id=rd.run_id, uid=uid, gid=gid, start_ts=T0)
    db = await SqliteSink.create(rd.proc_path("index.sqlite"), meta)
    recs = sample_records(rd.run_id)
    sink.write(recs)
    await db.write(recs)
    rd.write_atomic("meta.json", encode_meta(meta))
    assert _owner_mode("events.jsonl", dir_fd=rd.fd) == (0, gid, 0o640)
    assert _owner_mode("meta.json", dir_fd=rd.fd) == (0, gid, 0o640)
    # The database is in root's staging dir while active, never in the user's tree.
    assert sorted(os.listdir(rd.fd)) == ["events.jsonl", "meta.json"]
    staging = state_dir / "staging" / f"{uid}-{rd.run_id}"
    assert "index.sqlite" in os.listdir(staging) and _owner_mode(staging) == (0, 0, 0o700)
    sink.close()
    await db.close()
    meta.status = "complete"
    rd.write_atomic("meta.json", encode_meta(meta))
    rd.hand_over()
    assert sorted(os.listdir(rd.fd)) == ["events.jsonl", "index.sqlite", "meta.json"]
    assert _owner_mode(rd.fd) == (uid, gid, 0o700)
    for name in ("events.jsonl", "index.sqlite", "meta.json"):
        assert _owner_mode(name, dir_fd=rd.fd) == (uid, gid, 0o600), name
    assert not staging.exists()
    rd.close()
    os.close(runs_fd)
    import sqlite3

    conn = sqlite3.connect(f"file:{home.runs / meta.run_id / 'index.sqlite'}?mode=ro", uri=True)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 6


def test_symlink_as_runs(home: Home) -> None:
    shutil.rmtree(home.runs)
    home.runs.symlink_to(home.target)
    with pytest.raises(UnsafePathError, match=r"^.*/\.logira/runs is a symlink; logira refuses to write"):
        open_runs_dir(str(home.home), home.user.uid)
    _untouched(home)


def test_symlink_as_home(home: Home) -> None:
    link = home.base / "linkhome"
    link.symlink_to(home.home)
    with pytest.raises(UnsafePathError, match=r"/linkhome is a symlink"):
        open_runs_dir(str(link), home.user.uid)
    (home.base / "via").symlink_to(home.base)
    with pytest.raises(UnsafePathError, match=r"/via is a symlink"):
        open_runs_dir(str(home.base / "via" / ".logira"), home.user.uid)


@pytest.mark.parametrize("problem", ["owner", "mode", "missing", "file", "dotdot"])
def test_unsafe_home(home: Home, problem: str) -> None:
    uid = home.user.uid
    if problem == "owner":
        os.chown(home.runs, 0, 0)
        want = r"/\.logira/runs is not owned by uid \d+$"
    elif problem == "mode":
        os.chmod(home.home, 0o770)
        want = r"/\.logira is writable by group/others; chmod go-w it$"
    elif problem == "missing":
        shutil.rmtree(home.runs)
        want = r"/\.logira/runs does not exist; run `logira run` as the user once or create it$"
    elif problem == "file":
        shutil.rmtree(home.runs)
        home.runs.write_text("x")
        want = r"/\.logira/runs is not a directory$"
    else:
        with pytest.raises(UnsafePathError, match=r"contains '\.\.'"):
            open_user_dir(str(home.home / ".." / ".logira"), uid)
        return
    with pytest.raises(UnsafePathError, match=want):
        open_runs_dir(str(home.home), uid)


def test_names_planted_inside_runs(home: Home, state_dir: Path) -> None:
    base = base_run_id("agent", T0)
    (home.runs / base).symlink_to(home.target)
    (home.runs / f"{base}-2").write_text("planted")
    runs_fd = open_runs_dir(str(home.home), home.user.uid)
    try:
        rd = RunDir.create(runs_fd, "agent", home.user.uid, home.user.gid, T0, state_dir=state_dir)
        assert rd.run_id == f"{base}-3"
        os.close(rd.create_file("events.jsonl"))
        rd.close()
    finally:
        os.close(runs_fd)
    _untouched(home)
    assert (home.runs / f"{base}-2").read_text() == "planted"


@pytest.mark.parametrize("swap", ["symlink", "user_dir"])
def test_run_dir_swapped_during_creation(home: Home, state_dir: Path, monkeypatch, swap: str) -> None:
    """The user replaces the fresh run dir between mkdirat and openat: refused, target untouched."""
    real_mkdir = os.mkdir
    runs_fd = open_runs_dir(str(home.home), home.user.uid)

    def racing_mkdir(name, mode=0o777, *, dir_fd=None):
        real_mkdir(name, mode, dir_fd=dir_fd)
        if dir_fd == runs_fd:
            os.rename(name, f"{name}.moved", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            if swap == "symlink":
                os.symlink(str(home.target), name, dir_fd=dir_fd)
            else:
                real_mkdir(name, 0o700, dir_fd=dir_fd)
                os.chown(name, home.user.uid, home.user.gid, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    try:
        with pytest.raises(RunDirError, match=r"^run dir \S+ was replaced while it was being created"):
            RunDir.create(runs_fd, "agent", home.user.uid, home.user.gid, T0, state_dir=state_dir)
    finally:
        monkeypatch.undo()
        os.close(runs_fd)
    _untouched(home)


def test_create_file_never_follows_or_reuses(home: Home, state_dir: Path) -> None:
    runs_fd = open_runs_dir(str(home.home), home.user.uid)
    rd = RunDir.create(runs_fd, "agent", home.user.uid, home.user.gid, T0, state_dir=state_dir)
    os.symlink(str(home.target / "x"), "events.jsonl", dir_fd=rd.fd)  # as if planted
    with pytest.raises(FileExistsError):
        rd.create_file("events.jsonl")
    with pytest.raises(ValueError, match="invalid file name"):
        rd.create_file("../escape")
    rd.close()
    os.close(runs_fd)
    _untouched(home)


def test_fifty_concurrent_creates_same_second(home: Home, state_dir: Path) -> None:
    runs_fd = open_runs_dir(str(home.home), home.user.uid)

    def one(_: int) -> str:
        rd = RunDir.create(runs_fd, "agent", home.user.uid, home.user.gid, T0, state_dir=state_dir)
        rd.close()
        return rd.run_id

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        ids = list(ex.map(one, range(50)))
    os.close(runs_fd)
    base = base_run_id("agent", T0)
    assert sorted(ids) == sorted([base] + [f"{base}-{n}" for n in range(2, 51)])


def test_open_existing_recovers_only_active_runs(home: Home, state_dir: Path) -> None:
    uid, gid = home.user.uid, home.user.gid
    runs_fd = open_runs_dir(str(home.home), uid)
    rd = RunDir.create(runs_fd, "agent", uid, gid, T0, state_dir=state_dir)
    rd.write_atomic("meta.json", encode_meta(RunMeta(run_id=rd.run_id, uid=uid)))
    rd.close()
    again = RunDir.open_existing(runs_fd, rd.run_id, uid, gid, state_dir=state_dir)
    fd = again.open_read("meta.json")
    assert os.read(fd, 100).startswith(b"{")
    os.close(fd)
    again.hand_over()
    again.close()
    with pytest.raises(RunDirError, match="is not an active run"):
        RunDir.open_existing(runs_fd, rd.run_id, uid, gid, state_dir=state_dir)
    with pytest.raises(ValueError, match="invalid run id"):
        RunDir.open_existing(runs_fd, "../x", uid, gid, state_dir=state_dir)
    os.close(runs_fd)


def test_publish_after_crash_completes_sqlite_from_jsonl(home: Home, state_dir: Path) -> None:
    """A daemon that dies mid-run leaves a WAL and a lagging index; hand_over() repairs both."""
    import subprocess
    import sys
    import textwrap

    from logira.read.reader import open_db
    from logira.read.verify import verify_run

    uid, gid = home.user.uid, home.user.gid
    runs_fd = open_runs_dir(str(home.home), uid)
    rd = RunDir.create(runs_fd, "agent", uid, gid, T0, state_dir=state_dir)
    os.close(runs_fd)
    recs = sample_records(rd.run_id, n_extra=2)
    sink = JsonlSink(rd.create_file("events.jsonl"), rd.run_id)
    sink.write(recs)
    sink.close()
    staged = os.readlink(rd.proc_path("index.sqlite").rsplit("/", 1)[0]) + "/index.sqlite"
    crash = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from storage_samples import sample_records
        from logira.sinks.sqlite import SqliteSink
        from logira.format.meta import RunMeta
        async def main():
            db = await SqliteSink.create({staged!r}, RunMeta(run_id={rd.run_id!r}))
            await db.write(sample_records({rd.run_id!r})[:3])
            os._exit(0)  # no close: the WAL stays behind, as after a crash
        asyncio.run(main())
    """)
    subprocess.run([sys.executable, "-c", crash], check=True, timeout=30)
    assert os.path.getsize(staged + "-wal") > 0
    rd.write_atomic("meta.json", encode_meta(RunMeta(run_id=rd.run_id, uid=uid, status="incomplete",
                                                     event_count=8, final_hash=sink.last_hash)))
    rd.hand_over()
    run_dir = Path(rd.display_path)
    rd.close()
    assert sorted(os.listdir(run_dir)) == ["events.jsonl", "index.sqlite", "meta.json"]
    conn = open_db(run_dir)
    assert conn is not None
    assert [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")] == list(range(1, 9))
    rep = verify_run(run_dir, None)
    assert rep.problems == [] and rep.records == 8


def test_hand_over_survives_a_broken_database(home: Home, state_dir: Path) -> None:
    uid, gid = home.user.uid, home.user.gid
    runs_fd = open_runs_dir(str(home.home), uid)
    rd = RunDir.create(runs_fd, "agent", uid, gid, T0, state_dir=state_dir)
    os.close(runs_fd)
    with open(rd.proc_path("index.sqlite"), "wb") as f:
        f.write(b"this is not a database" * 300)
    with pytest.raises(RunDirError, match=r"^index\.sqlite of \S+ could not be published: file is not a database$"):
        rd.hand_over()
    assert _owner_mode(rd.fd) == (uid, gid, 0o700)  # the user got the run anyway
    rd.close()
