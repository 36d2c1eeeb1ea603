"""Rule patterns cannot stall the root daemon: RE2 matching, per-run budget, bounded text.

Every pattern is evaluated with RE2 (linear in the text). These tests feed adversarial
16 KiB command lines, scripts and paths through a real Detector with the built-in rules plus a
hostile per-run file and assert the exact match result and the WORK done, never the time (a
slower machine must not fail them; speed is measured in bench/bench_detect.py):
- every pattern evaluation goes through RE2 (`Regex.test` is metered; a per-run rule that fires
  without a metered evaluation would mean another engine matched it);
- no pattern ever sees more than the text cap (16 KiB) plus one cwd prefix (PATH_MAX);
- per event, the evaluations of per-run patterns are at most patterns times the event's fan-out
  (its operands, the commands of its script, 16 ancestors): linear in the event, never more.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from logira.detect.compile import MAX_MATCH_TEXT
from logira.detect.engine import Detector
from logira.detect.loader import RuleError, load_rules, load_sources
from logira.detect.rx import MAX_MEM_UNTRUSTED, Regex
from logira.detect.validate import UNTRUSTED_BUDGET
from logira.model.proctree import ProcessTree
from logira.model.record import ExecData, FileData, Record

HOME, WS = "/home/u", "/home/u/w"
N = MAX_MATCH_TEXT  # 16 KiB
PATH_MAX = 4096
ANCESTORS = 16  # ProcessTree.ancestors looks at most this far up


@dataclass
class Work:
    """What RE2 was asked to do for one event."""

    calls: int = 0  # pattern evaluations, all rules
    untrusted_calls: int = 0  # evaluations of per-run (untrusted) patterns
    untrusted_patterns: set[int] | None = None  # distinct per-run patterns evaluated (ids)
    longest: int = 0  # the longest text one evaluation scanned (bytes)

    def bounded_for(self, fanout: int) -> None:
        """No text over the cap, and no per-run pattern evaluated more than `fanout` times."""
        assert self.longest <= N + PATH_MAX + 1, f"a pattern scanned {self.longest} bytes"
        patterns = len(self.untrusted_patterns or ())
        assert self.untrusted_calls <= patterns * fanout, (self.untrusted_calls, patterns, fanout)


_meter: list[Work] = []


@pytest.fixture(autouse=True)
def _metered_re2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = Regex.test

    def test(self: Regex, text: str) -> bool:
        if _meter:
            w = _meter[-1]
            n = len(text.encode("utf-8", "surrogatepass"))
            w.calls += 1
            w.longest = max(w.longest, n)
            if self.max_mem == MAX_MEM_UNTRUSTED:
                w.untrusted_calls += 1
                assert w.untrusted_patterns is not None
                w.untrusted_patterns.add(id(self))
        return real(self, text)

    monkeypatch.setattr(Regex, "test", test)
    yield
    _meter.clear()


def _fanout(argv: list[str], ancestors: int = 0) -> int:
    script = argv[-1] if len(argv) > 2 and argv[1] == "-c" else ""
    # a script has at most len/2 commands, each tried as `command` and as a `pipe` element
    return 1 + len(argv) + len(script) + ancestors * (1 + ANCESTORS)


def _rules(*whens: str, name: str = "mine.yaml") -> str:
    body = "".join(f"      - {w}\n" for w in whens)
    return (
        "rules:\n  - id: user-rule\n    title: t\n    severity: high\n    category: c\n"
        f"    description: d\n    message: hit\n    when:\n{body}"
    )


def _detector(*whens: str) -> Detector:
    rs = load_rules(site_dir=None, extra=[("mine.yaml", _rules(*whens))])
    return Detector(rs, home=HOME, workspace=WS, tree=ProcessTree())


_seq = 0


def _feed(det: Detector, type_: str, data: object, pid: int = 50, ppid: int = 1) -> tuple[list[str], Work]:
    """Rule ids fired by one record and the RE2 work Detector.process did for it."""
    global _seq
    _seq += 1
    rec = Record(run_id="r", seq=_seq, ts=_seq, type=type_, pid=pid, ppid=ppid, uid=1000, summary="",
                 data_json=data)  # type: ignore[arg-type]  # fmt: skip
    det.tree.observe(rec)
    _meter.append(Work(untrusted_patterns=set()))
    out = det.process(rec)
    work = _meter.pop()
    fired = [d.rule_id for d in out]
    if "user-rule" in fired:
        assert work.untrusted_calls > 0, "a per-run rule fired without RE2 evaluating any of its patterns"
    return fired, work


def _exec(argv: list[str], filename: str = "/usr/bin/x") -> ExecData:
    return ExecData(filename=filename, argv=argv, cwd=WS)


@pytest.mark.parametrize(
    ("regex", "text", "hit"),
    [
        ("(a|aa)*$", "a" * N, True),  # exponential in a backtracking engine
        ("^(a|aa)*$", "a" * (N - 3) + "b", False),
        ("(x+x+)+y", "x" * N, False),
        ("(x+x+)+y", "x" * (N - 3) + "y", True),
        ("^(a+)+$", "a" * (N - 3) + "!", False),
        (r"^(\w+\s?)*$", "word " * (N // 5 - 1) + "!", False),
        (r"(?i)^(.*a){12}$", "A" * (N - 3) + "!", False),
    ],
)
def test_exponential_regexes_are_linear_in_per_run_rules(regex: str, text: str, hit: bool) -> None:
    det = _detector(f"exec: {{cmdline: '{regex}'}}")
    fired, work = _feed(det, "exec", _exec(["x", text[2:]]))  # cmdline = "x " + text[2:] (16 KiB)
    assert ("user-rule" in fired) is hit
    assert work.untrusted_calls == 1  # one cmdline, one pattern: scanned once
    work.bounded_for(1)


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("**a**a**a**b", "/" + "a" * (N - 2) + "c", False),  # .*a.*a.*a.*b: O(n^4) when backtracking
        ("**a**a**a**b", "/" + "a" * (N - 2) + "b", True),
        ("/**/a*a*a*a*a*b", "/x/" + "a" * (N - 4) + "c", False),
        ("$HOME/**/*a*a*a*b", HOME + "/" + "a/" * (N // 2 - 8) + "c", False),
    ],
)
def test_polynomial_globs_are_linear_on_16k_paths(glob: str, path: str, hit: bool) -> None:
    det = _detector(f"file: {{op: [create], path: ['{glob}']}}")
    fired, work = _feed(det, "file", FileData(op="create", path=path, mode=0o644))
    assert ("user-rule" in fired) is hit
    work.bounded_for(1)  # one path, each pattern scanned once
    # the same glob as an exec `paths`/`args` condition on a 16 KiB operand
    det = _detector(f"exec: {{program: [x], args: [['{glob}']]}}")
    fired, work = _feed(det, "exec", _exec(["x", path]))
    assert ("user-rule" in fired) is hit
    work.bounded_for(_fanout(["x", path]))


def _at_budget(template: str) -> str:
    """A per-run file with as many conditions `template.format(i=…)` as the budget admits."""
    whens: list[str] = []
    while True:
        w = template.format(i=len(whens), k=20 + len(whens))
        try:
            load_sources([("probe.yaml", _rules(*whens, w))], untrusted_from=0)
        except RuleError:
            break
        whens.append(w)
    assert len(whens) >= 2
    return _rules(*whens)


def _ab(n: int, rnd: random.Random) -> str:
    return "".join(rnd.choice("ab") for _ in range(n))


_DEEP_CWD = "/" + "/".join(["d" * 250] * 16)  # a 4 KiB cwd (PATH_MAX)


# The costliest shapes measured for each kind of condition, filled up to the budget, and an
# event that makes each of them work as hard as it can. `(a|b)*a[ab]{k}` explodes RE2's DFA
# state set, so RE2 ends up in its NFA on every byte.
_WORST = {
    "cmdline": ("exec: {{cmdline: '(a|b)*a[ab]{{{k}}}'}}", lambda r: [("x", ["x", _ab(N - 2, r)], "/")]),
    "paths": (
        "exec: {{program: [rm], paths: ['**/q*z{i}']}}",
        lambda r: [("rm", ["rm", *(f"{i:x}" for i in range(1400))], _DEEP_CWD)],
    ),
    "shell": (
        "exec: {{shell: {{command: {{program: ['q*{i}']}}}}}}",
        lambda r: [("bash", ["bash", "-c", "a|" * (N // 2 - 8) + "a"], "/")],
    ),
    "args": (
        "exec: {{program: [x], args: [['q*{i}']]}}",
        lambda r: [("x", ["x", *["a"] * (N // 2 - 2)], "/")],
    ),
}


@pytest.mark.parametrize("kind", sorted(_WORST))
def test_a_per_run_file_at_its_budget_costs_bounded_time_per_event(kind: str) -> None:
    template, events = _WORST[kind]
    rs = load_rules(site_dir=None, extra=[("mine.yaml", _at_budget(template))])
    det = Detector(rs, home=HOME, workspace=WS, tree=ProcessTree())
    rnd = random.Random(7)
    for i in range(3):  # distinct command lines: no match cache hits
        for prog, argv, cwd in events(rnd):
            argv = [*argv[:-1], argv[-1] + "ab"[i % 2] * i]
            data = ExecData(filename=f"/usr/bin/{prog}", argv=argv, cwd=cwd)
            fired, work = _feed(det, "exec", data)
            assert ("user-rule" in fired) is (kind == "cmdline")
            assert work.untrusted_calls > 0  # the per-run patterns really ran on this event
            work.bounded_for(_fanout(argv))


def test_ancestor_conditions_at_budget_cost_bounded_time() -> None:
    text = _at_budget("{{exec: {{program: [child]}}, ancestor: {{cmdline: '(a|b)*a[ab]{{{k}}}c'}}}}")
    det = Detector(load_rules(site_dir=None, extra=[("m.yaml", text)]), home=HOME, workspace=WS,
                   tree=ProcessTree())  # fmt: skip
    rnd = random.Random(3)
    for pid in range(100, 117):  # a chain of 16 ancestors, each with a 16 KiB command line
        _feed(det, "exec", _exec(["p", _ab(N - 2, rnd)], filename="/usr/bin/p"),
              pid=pid, ppid=pid - 1)  # fmt: skip
    # no `c` anywhere: every ancestor is searched to the end with the DFA state set exploded
    fired, work = _feed(det, "exec", _exec(["child"], filename="/usr/bin/child"), pid=200, ppid=116)
    assert fired == []
    assert work.untrusted_calls > 0
    work.bounded_for(_fanout(["child"], ancestors=1))  # each ancestor pattern: at most 16 ancestors


def test_per_run_budget_refuses_a_costly_file_with_file_line_and_the_fix() -> None:
    whens = [f"exec: {{cmdline: '(a|b)*a[ab]{{{100 + i}}}'}}" for i in range(40)]
    text = _rules(*whens)
    with pytest.raises(RuleError) as exc:
        load_rules(site_dir=None, extra=[("mine.yaml", text)])
    msg = str(exc.value)
    assert msg.startswith(
        f"mine.yaml:2: rule user-rule: the conditions of a per-run rules file may cost {UNTRUSTED_BUDGET} in all "
    )
    assert msg.endswith("or have an admin install the file in /etc/logira/rules.d")
    # the same file is fine as a trusted (site) source
    assert load_sources([("site.yaml", text)]).get("user-rule") is not None


def test_huge_per_run_file_is_refused_quickly() -> None:
    # the largest start_run.rules_yaml (256 KiB) of costly patterns: refused at load, fast
    line = "      - exec: {cmdline: '(a|b)*a[ab]{20}x'}\n"
    text = _rules() + line * ((256 * 1024 - len(_rules())) // len(line))
    compiled: list[str] = []
    real_init = Regex.__init__

    def counting_init(self: Regex, pattern: str, **kw: object) -> None:
        compiled.append(pattern)
        real_init(self, pattern, **kw)  # type: ignore[arg-type]

    mp = pytest.MonkeyPatch()
    mp.setattr(Regex, "__init__", counting_init)
    try:
        with pytest.raises(RuleError, match=f"may cost {UNTRUSTED_BUDGET} in all"):
            load_rules(site_dir=None, extra=[("big.yaml", text)])
    finally:
        mp.undo()
    # bounded work: each of the ~6 000 small patterns is compiled at most twice (cost, then
    # engine), nothing is matched, and nothing grows faster than the file
    patterns = text.count("cmdline:")
    assert patterns > 5000
    assert len([c for c in compiled if "[ab]{20}x" in c]) <= 2 * patterns


@pytest.mark.parametrize(
    ("regex", "hint"),
    [
        ("foo(?=bar)", "invalid perl operator: (?= (lookahead is not supported)"),
        ("(?<!x)foo", "invalid perl operator: (?<! (lookbehind is not supported)"),
        (r"(a)\\1", r"invalid escape sequence: \1 (backreferences are not supported)"),
        (r"curl\\Z", r"invalid escape sequence: \Z (write \z for end of text)"),
        ("a++", "bad repetition operator: ++ (possessive quantifiers are not needed (RE2 never backtracks))"),
        ("(?x) a", "invalid perl operator: (?x (inline flags are i, m, s and U only)"),
    ],
)
def test_unsupported_regex_features_are_refused_with_the_fix(regex: str, hint: str) -> None:
    text = _rules(f'exec: {{cmdline: "{regex}"}}')
    with pytest.raises(RuleError) as exc:
        load_rules(site_dir=None, extra=[("mine.yaml", text)])
    shown = regex.replace("\\\\", "\\")
    assert str(exc.value) == f"mine.yaml:9: rule user-rule: bad regex {shown!r}: {hint}"


def test_builtin_rules_on_adversarial_16k_text_are_fast() -> None:
    # `socket\b.*(?:connect|dup2)` and friends were quadratic with a backtracking engine
    rs = load_rules(site_dir=None)
    det = Detector(rs, home=HOME, workspace=WS, tree=ProcessTree())
    texts = [
        ("python3", ["python3", "-c", "socket " * (N // 7)]),
        ("bash", ["bash", "-c", "sh " + "$(" * (N // 2 - 2)]),
        ("bash", ["bash", "-c", "bash <(" + " " * (N - 20) + "curl"]),
        ("bash", ["bash", "-c", "/dev/tcp/" + "x" * (N - 20)]),
        ("ssh", ["ssh", "-o" + " -o" * (N // 3 - 2)]),
    ]
    for prog, argv in texts:
        _fired, work = _feed(det, "exec", _exec(argv, filename=f"/usr/bin/{prog}"))
        assert work.calls > 0 and work.longest <= N + PATH_MAX + 1, (argv[:2], work)
    path = "/" + "/".join(["a" * 200] * 20) + "/.env"  # ~4 KiB path through every path glob
    _fired, work = _feed(det, "file", FileData(op="read", path=path, mode=0o644))
    assert work.calls > 0 and work.longest <= len(path) + 1


def test_ancestor_cmdline_regex_sees_at_most_16k() -> None:
    det = _detector("{exec: {program: [child]}, parent: {cmdline: 'MARK$'}}")
    # the parent's argv is 64 KiB ending in MARK: only its first 16 KiB are matched
    _feed(det, "exec", _exec(["p", "a" * (4 * N) + "MARK"], filename="/usr/bin/p"), pid=60)
    fired, work = _feed(det, "exec", _exec(["child"], filename="/usr/bin/child"), pid=61, ppid=60)
    assert fired == []
    assert work.untrusted_calls == 1 and work.longest <= N  # the parent's cmdline, capped
    _feed(det, "exec", _exec(["p", "a" * 100 + "MARK"], filename="/usr/bin/p"), pid=62)
    fired, _ = _feed(det, "exec", _exec(["child"], filename="/usr/bin/child"), pid=63, ppid=62)
    assert fired == ["user-rule"]


def test_undecodable_bytes_match_wildcards_like_characters() -> None:
    det = _detector("file: {op: [create], path: ['/tmp/?x*']}")
    # surrogate-escaped bytes (a path that is not UTF-8) are one character each
    fired, _ = _feed(det, "file", FileData(op="create", path="/tmp/\udcffx\udcfe\udcfd", mode=0o644))
    assert fired == ["user-rule"]
    fired, _ = _feed(det, "file", FileData(op="create", path="/tmp/\udcff\udcfex", mode=0o644))
    assert fired == []
