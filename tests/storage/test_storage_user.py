"""The user's side, run as a real unprivileged user: home creation, reading an active run, reader."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storage_samples import T0, build_run, sample_records

from logira.cli.errors import CliError
from logira.format.meta import RunMeta, encode_meta
from logira.read.reader import iter_records, list_runs, open_db, read_meta, resolve_run
from logira.sinks.jsonl import JsonlSink
from logira.sinks.sqlite import SqliteSink
from logira.storage.safefs import RunDir, open_runs_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


def _as_user(user, code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(user.cmd(sys.executable, "-c", code), env=user.env(**env), capture_output=True,
                          text=True, timeout=30)


@pytest.fixture
def user_home(test_user):
    d = test_user.home / f"lh-{secrets.token_hex(3)}"
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_ensure_home_as_user(test_user, user_home: Path) -> None:
    code = "from logira.storage.home import ensure_home_as_user; print(ensure_home_as_user())"
    r = _as_user(test_user, code, LOGIRA_HOME=str(user_home))
    assert (r.returncode, r.stdout.strip()) == (0, str(user_home)), r.stderr
    for p in (user_home, user_home / "runs"):
        st = os.lstat(p)
        assert (st.st_uid, st.st_mode & 0o777) == (test_user.uid, 0o700)
    # A symlinked runs/ is refused with a one-line message, not followed.
    (user_home / "runs").rmdir()
    os.symlink("/tmp", user_home / "runs")
    os.lchown(user_home / "runs", test_user.uid, test_user.gid)
    wrap = f"import sys\ntry:\n    {code}\nexcept Exception as e:\n    sys.exit(f'error: {{e}}')"
    r = _as_user(test_user, wrap, LOGIRA_HOME=str(user_home))
    assert r.returncode == 1
    assert r.stderr == f"error: {user_home}/runs is a symlink; logira needs a real directory there " \
                       "(remove the symlink)\n"


async def test_active_run_readable_not_writable_by_user(test_user, user_home: Path, tmp_path: Path) -> None:
    (user_home / "runs").mkdir(parents=True, mode=0o700)
    for p in (user_home, user_home / "runs"):
        os.chown(p, test_user.uid, test_user.gid)
        os.chmod(p, 0o700)
    runs_fd = open_runs_dir(str(user_home), test_user.uid)
    rd = RunDir.create(runs_fd, "agent", test_user.uid, test_user.gid, time.time_ns(), state_dir=tmp_path)
    os.close(runs_fd)
    sink = JsonlSink(rd.create_file("events.jsonl"), rd.run_id)
    sink.write(sample_records(rd.run_id))
    sink.flush()
    db = await SqliteSink.create(rd.proc_path("index.sqlite"), RunMeta(run_id=rd.run_id))
    await db.write(sample_records(rd.run_id))
    rd.write_atomic("meta.json", encode_meta(RunMeta(run_id=rd.run_id, uid=test_user.uid, start_ts=T0)))
    run_dir = user_home / "runs" / rd.run_id
    code = """
import os
from pathlib import Path
from logira.read.reader import iter_records, resolve_run, resolve_home, open_db
d = resolve_run(resolve_home(), "last")
print(d.name, [r.seq for r in iter_records(d)], open_db(d))
for name in ("events.jsonl", "meta.json"):
    try:
        open(d / name, "ab")
        print("WRITABLE", name)
    except PermissionError:
        pass
try:
    (d / "planted").write_text("x")
    print("PLANTED")
except PermissionError:
    pass
"""
    r = _as_user(test_user, code, LOGIRA_HOME=str(user_home))
    assert (r.returncode, r.stdout) == (0, f"{rd.run_id} [1, 2, 3, 4, 5, 6] None\n"), r.stderr
    sink.close()
    await db.close()
    rd.hand_over()
    rd.close()
    r = _as_user(test_user, f"open({str(run_dir / 'events.jsonl')!r}, 'ab'); print('ok')")
    assert r.stdout == "ok\n", r.stderr  # after hand_over the run is the user's
    # The published database opens read-only for the user and creates nothing next to it.
    code = (f"from pathlib import Path; from logira.read.reader import open_db; "
            f"c = open_db(Path({str(run_dir)!r})); print(c.execute('SELECT count(*) FROM events').fetchone()[0])")
    r = _as_user(test_user, code)
    assert (r.returncode, r.stdout) == (0, "6\n"), r.stderr
    assert sorted(os.listdir(run_dir)) == ["events.jsonl", "index.sqlite", "meta.json"]


async def test_reader_selects_by_start_time(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(CliError, match=rf"^no runs yet under {home}/runs$"):
        resolve_run(home, "last")
    # Names sort the other way round from start times: "last" must follow start_ts.
    for name, start in (("20261126-030000-zzz", T0 + 5), ("20261126-030000-aaa", T0 + 9),
                        ("20261126-030000-mmm", T0 + 1)):
        await build_run(home / "runs" / name, tmp_path / "state", sample_records(name), seal=False)
        meta = read_meta(home / "runs" / name)
        meta.start_ts = start
        (home / "runs" / name / "meta.json").write_bytes(encode_meta(meta))
    (home / "runs" / "20261126-040000-broken").mkdir()  # unreadable meta: listed, meta None
    (home / "runs" / "not a run").mkdir()
    runs = list_runs(home)
    assert [(r.run_id, r.meta is not None) for r in runs] == [
        ("20261126-030000-mmm", True), ("20261126-030000-zzz", True), ("20261126-030000-aaa", True),
        ("20261126-040000-broken", False)]
    assert resolve_run(home, "last") == home / "runs" / "20261126-040000-broken"
    (home / "runs" / "20261126-040000-broken").rmdir()
    assert resolve_run(home, "last") == home / "runs" / "20261126-030000-aaa"
    assert resolve_run(home, "20261126-030000-zzz") == home / "runs" / "20261126-030000-zzz"
    with pytest.raises(CliError, match=rf"^run 20261126-000000-x not found under {home}/runs$"):
        resolve_run(home, "20261126-000000-x")
    with pytest.raises(CliError, match=r"^invalid run id '\.\./etc'"):
        resolve_run(home, "../etc")
    with pytest.raises(CliError, match=r"meta\.json is missing$"):
        read_meta(tmp_path)
    d = home / "runs" / "20261126-030000-aaa"
    assert open_db(d) is not None and [r.seq for r in iter_records(d)] == [1, 2, 3, 4, 5, 6]
