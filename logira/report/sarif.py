"""The report as SARIF 2.1.0 for GitHub code scanning.

GitHub rejects a whole upload when any result lacks a location, so every result is anchored to a
real file of the repository: the file the detection is about when it lies inside the repository
(and exists there now), otherwise the repository's AGENTS.md / CLAUDE.md / the running workflow
file / any workflow file / README, at line 1, with the command or destination in the message.
Rule ids are logira's rule ids (stable across versions); severities map to `level` and to
`security-severity` (GitHub's 0-10 scale: ≥ 9 critical, ≥ 7 high, ≥ 4 medium, else low).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from pathlib import Path

from logira.render.escape import esc, esc_argv
from logira.report.model import Detection, Report

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
INCOMPLETE_RULE = "logira-run-incomplete"
ANCHOR_CANDIDATES = ("AGENTS.md", "CLAUDE.md")


class AnchorError(Exception):
    """No file of the repository can carry the results (one-line message naming the fix)."""


def _is_repo_file(repo: str, rel: str) -> bool:
    """`rel` is a regular file inside `repo`, and no component on the way is a symlink out of it."""
    full = posixpath.join(repo, rel)
    try:
        real = os.path.realpath(full)
    except OSError:
        return False
    root = os.path.realpath(repo)
    return (
        (real == root or real.startswith(root.rstrip("/") + "/"))
        and os.path.isfile(real)
        and not os.path.islink(full)
    )


def fallback_anchor(repo: str, explicit: str = "") -> str:
    """The repo-relative file that carries results about things outside the repository."""
    cands: list[str] = []
    if explicit:
        cands.append(posixpath.relpath(explicit, repo) if posixpath.isabs(explicit) else explicit)
    cands += list(ANCHOR_CANDIDATES)
    ref = os.environ.get("GITHUB_WORKFLOW_REF", "")  # owner/repo/.github/workflows/ci.yml@refs/heads/main
    if ".github/workflows/" in ref:
        cands.append(".github/workflows/" + ref.split(".github/workflows/", 1)[1].split("@", 1)[0])
    wf = posixpath.join(repo, ".github", "workflows")
    with contextlib.suppress(OSError):
        cands += sorted(f".github/workflows/{n}" for n in os.listdir(wf) if n.endswith((".yml", ".yaml")))
    cands.append("README.md")
    for c in cands:
        if c and not c.startswith("../") and _is_repo_file(repo, c):
            return c
    if explicit:
        raise AnchorError(f"--anchor {explicit} is not a file inside {repo}: name a file of the repository")
    raise AnchorError(
        f"no file in {repo} to anchor SARIF results to (looked for AGENTS.md, CLAUDE.md, .github/workflows/*.yml, "
        "README.md): pass --anchor FILE or --repo DIR"
    )


def _touched_in_repo(d: Detection, repo: str) -> str | None:
    rel = d.related
    if rel is None:
        return None
    for p in (rel.path, rel.exe if rel.type == "exec" else None):
        if p and posixpath.isabs(p):
            norm = posixpath.normpath(p)
            root = repo.rstrip("/")
            if norm.startswith(root + "/"):
                r = norm[len(root) + 1 :]
                if _is_repo_file(repo, r):
                    return r
    return None


def _context(d: Detection) -> str:
    """The command or destination the detection is about, for results anchored away from it."""
    bits: list[str] = []
    if d.lineage:
        argv = d.lineage[0].argv
        bits.append("command: " + (esc_argv(argv) if argv else esc(d.lineage[0].exe)))
    rel = d.related
    if rel is not None:
        if rel.dst:
            bits.append(f"destination: {esc(rel.dst)}")
        if rel.path:
            bits.append(f"path: {esc(rel.path)}")
        if not bits:
            bits.append(f"event: {esc(rel.summary)}")
    return "; ".join(bits)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "backslashreplace")).hexdigest()


def render_sarif(r: Report, repo: str, anchor: str = "") -> dict:
    """The SARIF log (a dict ready for JSON). Raises AnchorError when no file can carry a result."""
    run = r.run
    rules: list[dict] = []
    index: dict[str, int] = {}
    worst: dict[str, str] = {}
    order = ("info", "low", "medium", "high", "critical")
    for g in r.detections.rules:
        prev = worst.get(g.rule_id)
        if prev is None or order.index(g.severity if g.severity in order else "info") > order.index(prev):
            worst[g.rule_id] = g.severity if g.severity in order else "info"
    for g in r.detections.rules:
        if g.rule_id in index:
            continue
        sev = worst[g.rule_id]
        index[g.rule_id] = len(rules)
        title = esc(g.title) or g.rule_id
        rules.append({
            "id": g.rule_id,
            "name": "".join(p.capitalize() for p in g.rule_id.replace("_", "-").split("-") if p) or "Rule",
            "shortDescription": {"text": title},
            "fullDescription": {"text": esc(" ".join(g.description.split())) or title},
            "help": {"text": f"{title}. logira records what an AI agent did at the kernel level; this rule "
                             f"flagged it. Inspect with `logira explain RUN`."},
            "defaultConfiguration": {"level": LEVELS.get(sev, "note")},
            "properties": {"security-severity": SECURITY_SEVERITY.get(sev, "1.0"),
                           "tags": ["security", "logira", f"severity-{sev}"]},
        })  # fmt: skip
    results: list[dict] = []
    fallback: str | None = None

    def anchor_file() -> str:
        nonlocal fallback
        if fallback is None:
            fallback = fallback_anchor(repo, anchor)
        return fallback

    seen: set[str] = set()
    for d in r.detections.items:
        uri = _touched_in_repo(d, repo)
        msg = esc(d.message)
        if uri is None:
            uri = anchor_file()
            ctx = _context(d)
            if ctx:
                msg += f" ({ctx})"
        msg += f" [logira run {esc(run.run_id)}, seq {d.seq}]"
        fp = _fingerprint(d.rule_id, uri, esc(d.message))
        if fp in seen:  # the same finding again in this run: one alert is enough
            continue
        seen.add(fp)
        sev = d.severity if d.severity in LEVELS else "info"
        if d.rule_id not in index:  # a detection beyond the grouped rules (cannot happen; stay valid)
            index[d.rule_id] = len(rules)
            rules.append({"id": d.rule_id, "shortDescription": {"text": d.rule_id},
                          "fullDescription": {"text": d.rule_id},
                          "properties": {"security-severity": SECURITY_SEVERITY[sev]}})  # fmt: skip
        results.append({
            "ruleId": d.rule_id,
            "ruleIndex": index[d.rule_id],
            "level": LEVELS[sev],
            "message": {"text": msg},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                                "region": {"startLine": 1}}}],
            "partialFingerprints": {"logiraFinding/v1": fp},
            "properties": {"logira-run": run.run_id, "seq": d.seq, "severity": d.severity},
        })  # fmt: skip
    if run.status == "INCOMPLETE":
        index[INCOMPLETE_RULE] = len(rules)
        rules.append({
            "id": INCOMPLETE_RULE,
            "name": "RunIncomplete",
            "shortDescription": {"text": "The run's record is incomplete"},
            "fullDescription": {"text": "logira could not record everything the agent did (events were dropped, "
                                        "rules were not evaluated, or the run was interrupted): absence of "
                                        "detections proves nothing for this run."},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"security-severity": "5.0", "tags": ["security", "logira"]},
        })  # fmt: skip
        uri = anchor_file()
        results.append({
            "ruleId": INCOMPLETE_RULE,
            "ruleIndex": index[INCOMPLETE_RULE],
            "level": "warning",
            "message": {"text": f"logira run {esc(run.run_id)} is INCOMPLETE: "
                                + "; ".join(esc(x) for x in run.incomplete_reasons)},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                                "region": {"startLine": 1}}}],
            "partialFingerprints": {"logiraFinding/v1": _fingerprint(INCOMPLETE_RULE, uri, run.run_id)},
        })  # fmt: skip
    driver = {"name": "logira", "version": r.generator.split(" ", 1)[-1], "rules": rules}
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "automationDetails": {"id": f"logira/{run.tool or 'run'}/"},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(repo).as_uri().rstrip("/") + "/"}},
            "results": results,
            "properties": {"logira-run": run.run_id, "status": run.status,
                           "detections": r.detections.total,
                           "detections-omitted": r.detections.total - len(r.detections.items)},
        }],
    }  # fmt: skip
