"""Configuration precedence and one-line errors (pure logic), and the not-root refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logira.daemon.config import ConfigError, DaemonConfig, load

REPO = Path(__file__).resolve().parents[2]


def test_defaults_match_the_documented_file() -> None:
    assert load(["--config", str(REPO / "config" / "logirad.toml")], env={}) == DaemonConfig()


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text('socket = "/tmp/a.sock"\nstate_dir = "/tmp/st"\nnet = false\nstraggler_wait = 5.0\n')
    got = load(["--config", str(cfg)], env={"LOGIRA_SOCK": "/tmp/env.sock"})
    assert (got.socket, got.state_dir, got.net, got.straggler_wait) == (
        "/tmp/env.sock",
        "/tmp/st",
        False,
        5.0,
    )
    got = load(
        ["--config", str(cfg), "--sock", "/tmp/flag.sock", "--net", "--straggler-wait", "0.5"],
        env={"LOGIRA_SOCK": "/tmp/env.sock", "LOGIRA_STATE_DIR": "/tmp/envst"},
    )
    assert (got.socket, got.state_dir, got.net, got.straggler_wait) == (
        "/tmp/flag.sock",
        "/tmp/envst",
        True,
        0.5,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1\n", "Object contains unknown field `bogus`"),
        ('straggler_action = "ignore"\n', "straggler_action must be kill or leave, not 'ignore'"),
        ("ring_bytes = 5000\n", "ring_bytes must be a power of two >= 4096, not 5000"),
        ('cgroup_parent = "a/b"\n', "cgroup_parent must be a single directory name, not 'a/b'"),
        ("flush_interval = 3.0\n", "flush_interval must be in (0, 1] seconds"),
        ("exec = \n", "Invalid value"),
    ],
)
def test_config_errors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(["--config", str(cfg)], env={})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_not_root_is_refused_with_one_line(test_user, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    out = subprocess.run(
        test_user.cmd(
            sys.executable,
            "-m",
            "logira.daemon.main",
            "--sock",
            str(tmp_path / "s.sock"),
            "--state-dir",
            str(tmp_path / "st"),
            "--config",
            "/dev/null",
            "--journald",
            "off",
        ),
        env=test_user.env(),
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (out.returncode, out.stderr) == (
        1,
        "logirad: error: logirad must run as root (it loads BPF and manages cgroups): sudo logirad\n",
    )
