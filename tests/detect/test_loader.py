"""Rule loading: every validation error is one line `file:line: rule <id>: problem`."""

from __future__ import annotations

from pathlib import Path

import pytest

from logira.detect.loader import RuleError, load_rules, load_sources

BASE = """rules:
  - id: r1
    title: T
    severity: high
    category: c
    description: d
    message: "m {path}"
    when:
      file: {op: [read], path: ["/x"]}
"""
WHEN = 'file: {op: [read], path: ["/x"]}'


def _err(text: str, name: str = "x.yaml") -> str:
    with pytest.raises(RuleError) as exc:
        load_sources([(name, text)])
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_base_rule_loads() -> None:
    rs = load_sources([("x.yaml", BASE)])
    assert [r.rule.id for r in rs.rules] == ["r1"]
    assert (rs.rules[0].source, rs.rules[0].line) == ("x.yaml", 2)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("category: c", "category: c\n    colour: red", "x.yaml:6: rule r1: unknown key 'colour'"),
        ("op: [read]", "op: [read], pth: [x]", "x.yaml:9: rule r1: unknown key 'pth' in when.file"),
        ("severity: high", "severity: 3", "x.yaml:4: rule r1: severity: expected `str`, got `int`"),
        (
            "severity: high",
            "severity: huge",
            "x.yaml:4: rule r1: severity 'huge' must be one of info, low, medium, high, critical",
        ),
        ("    title: T\n", "", "x.yaml:2: rule r1: missing required key 'title'"),
        (
            WHEN,
            'exec: {cmdline: "(unclosed"}',
            "x.yaml:9: rule r1: bad regex '(unclosed': missing ): (unclosed",
        ),
        (
            WHEN,
            'exec: {shell: {regex: "a["}}',
            "x.yaml:9: rule r1: bad regex 'a[': missing ]: [",
        ),
        (
            WHEN,
            'exec: {cmdline: "(a)\\\\1"}',
            "x.yaml:9: rule r1: bad regex '(a)\\\\1': invalid escape sequence: \\1 (backreferences are not supported)",
        ),
        (
            WHEN,
            'file: {path: ["/*/*/*/*/*/*/*/*/*"]}',
            "x.yaml:9: rule r1: glob '/*/*/*/*/*/*/*/*/*' has more than 8 wildcards (slow to match); simplify it",
        ),
        (
            WHEN,
            "exec: {flags: [rf]}",
            "x.yaml:9: rule r1: flag 'rf' must start with - or -- and name an option",
        ),
        (
            WHEN,
            "net: {dst: [10.0.0.0/33]}",
            "x.yaml:9: rule r1: bad address/CIDR '10.0.0.0/33': '10.0.0.0/33' does not appear to be an IPv4 or IPv6 network",
        ),
        (WHEN, 'net: {port: ["9-1"]}', "x.yaml:9: rule r1: bad port range '9-1'"),
        (WHEN, "net: {port: [70000]}", "x.yaml:9: rule r1: port 70000 out of range 0-65535"),
        (
            WHEN,
            "net: {direction: sideways}",
            "x.yaml:9: rule r1: direction must be outbound or inbound, not 'sideways'",
        ),
        (
            WHEN,
            "file: {op: [reed]}",
            "x.yaml:9: rule r1: unknown file op 'reed' (one of: create, modify, read, delete, rmdir, rename, chmod, truncate, link, symlink, mkdir)",
        ),
        (WHEN, "file: {op: read}", "x.yaml:9: rule r1: when.file.op: expected `array`, got `str`"),
        (
            WHEN,
            "file: {}\n      exec: {}",
            "x.yaml:8: rule r1: exactly one of exec/file/net/proc/flow per condition, got exec, file",
        ),
        (
            "category: c",
            "category: c\n    tags: [TA001]",
            "x.yaml:6: rule r1: tag 'TA001' is not a MITRE ATT&CK technique id (T1234 or T1234.001)",
        ),
        ("title: T", "title: T\n    title: U", "x.yaml:4: rule r1: key 'title' appears twice in one mapping"),
        (
            'message: "m {path}"',
            'message: "m {path.__class__}"',
            "x.yaml:7: rule r1: message placeholder {path.__class__} is not a plain field name",
        ),
        (
            'message: "m {path}"',
            'message: "m {path[0]}"',
            "x.yaml:7: rule r1: message placeholder {path[0]} is not a plain field name",
        ),
        (
            'message: "m {path}"',
            'message: "m {path!r:>99999}"',
            "x.yaml:7: rule r1: message placeholder {path!r:>99999} is not a plain field name",
        ),
        (
            'message: "m {path}"',
            'message: "m {dst_ip}"',
            "x.yaml:7: rule r1: message placeholder {dst_ip} is not a field of this event type (one of: comm, errno, exe, mode, op, path, path2, path_literal, pid, ppid, same_file_as, type, uid, unverified)",
        ),
        (
            'message: "m {path}"',
            'message: "m {"',
            "x.yaml:7: rule r1: unbalanced '{' in message (write {{ for a literal brace)",
        ),
        (
            "id: r1",
            "id: R 1",
            "x.yaml:2: rule R 1: id 'R 1' must be lower-case letters, digits, . _ - (max 64)",
        ),
    ],
)
def test_validation_error_names_file_line_and_rule(old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert _err(BASE.replace(old, new)) == expected


def test_duplicate_id_in_one_file() -> None:
    assert (
        _err(BASE + BASE.replace("rules:\n", ""))
        == "x.yaml:10: rule r1: duplicate id (first defined at line 2)"
    )


def test_duplicate_id_across_sources_needs_override() -> None:
    with pytest.raises(RuleError) as exc:
        load_sources([("a.yaml", BASE), ("b.yaml", BASE)])
    assert str(exc.value) == (
        "b.yaml:2: rule r1: duplicate id (already defined at a.yaml:2; set override: true to replace it)"
    )


def test_override_replaces_and_disable_removes() -> None:
    over = BASE.replace("severity: high", "severity: low\n    override: true")
    rs = load_sources([("a.yaml", BASE), ("b.yaml", over)])
    assert [(r.rule.id, r.rule.severity, r.source) for r in rs.rules] == [("r1", "low", "b.yaml")]
    rs = load_sources([("a.yaml", BASE), ("c.yaml", "disable: [r1]\n")])
    assert (rs.rules, rs.disabled) == ([], ["r1"])
    with pytest.raises(
        RuleError, match=r"^b.yaml:2: rule r1: override: true but no earlier rule has this id$"
    ):
        load_sources([("b.yaml", over)])


def test_unknown_disable_and_top_level_key() -> None:
    assert _err(BASE + "disable: [nope]\n") == "x.yaml:10: rule nope: cannot disable an unknown rule id"
    assert _err("rulez: []\n") == "x.yaml:1: unknown top-level key 'rulez' (allowed: version, rules, disable)"
    assert _err("rules: [\n") == "x.yaml:2: invalid YAML: expected the node content, but found '<stream end>'"


def test_enabled_false_is_listed_as_disabled() -> None:
    rs = load_sources([("x.yaml", BASE.replace("category: c", "category: c\n    enabled: false"))])
    assert (rs.rules, rs.disabled) == ([], ["r1"])


def test_sha256_covers_every_source() -> None:
    a = load_sources([("x.yaml", BASE)]).sha256
    b = load_sources([("x.yaml", BASE.replace("title: T", "title: U"))]).sha256
    assert a != b and len(a) == 64


def test_load_rules_merges_builtin_site_and_extra(tmp_path: Path) -> None:
    builtin = load_rules(site_dir=None)
    assert len(builtin.rules) >= 50
    (tmp_path / "10-site.yaml").write_text("disable: [net-public-egress]\n")
    extra = BASE.replace("id: r1", "id: custom-1")
    rs = load_rules(site_dir=tmp_path, extra=[("my.yaml", extra)])
    ids = [r.rule.id for r in rs.rules]
    assert "net-public-egress" not in ids and ids[-1] == "custom-1"
    assert rs.disabled == ["net-public-egress"]
    assert rs.sources[-2:] == [str(tmp_path / "10-site.yaml"), "my.yaml"]
    assert load_rules(site_dir=tmp_path / "missing").sha256 == builtin.sha256


def test_docs_example_rule_file_loads_and_every_default_rule_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "rules.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    rs = load_sources(
        [("builtin", "rules: []\n"), ("doc.yaml", example.replace("disable: [net-public-egress]", ""))]
    )
    assert [r.rule.id for r in rs.rules] == ["my-ssh-tunnel"]
    missing = [r.rule.id for r in load_rules(site_dir=None).rules if f"| `{r.rule.id}` |" not in doc]
    assert missing == []


def test_alias_bombs_and_deep_nesting_are_refused_with_bounded_work() -> None:
    # bounded work: expansion stops at the node cap named in the message (10^9 nodes unexpanded)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = "\n".join(lines) + "\nrules: []\n"
    assert (
        _err(bomb)
        == "x.yaml:1: rule file expands to more than 200000 YAML nodes (too large or too many aliases)"
    )
    assert _err("rules: " + "[" * 5000 + "]" * 5000 + "\n") == "x.yaml:1: rule file nests too deeply"
