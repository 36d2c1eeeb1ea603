"""The report as compact GitHub-flavoured Markdown, for `$GITHUB_STEP_SUMMARY` or a PR comment.

Headline, the detections table, the agent's tool calls, what is new in this run, and a hint to the
full report. Every
recorded string goes through `esc_md` (no markup, no raw HTML, table-safe) and recorded text is
never placed in a link target.
"""

from __future__ import annotations

from logira.render.escape import esc_md
from logira.render.timefmt import TimeFormatter
from logira.report.model import Report

SEV_ICON = {"critical": "🟣", "high": "🔴", "medium": "🟠", "low": "🟡", "info": "⚪"}
RULES_SHOWN = 20
NEW_SHOWN = 10  # items per category
CALLS_SHOWN = 15


def _cut(s: str, n: int = 120) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def render_md(r: Report, full_report_hint: str = "") -> str:
    run, d = r.run, r.detections
    tf = TimeFormatter(run.start_ts, "rel")
    out: list[str] = []
    sev = ", ".join(f"{n} {s}" for s, n in d.by_severity.items())
    status = (
        "✅ COMPLETE"
        if run.status == "COMPLETE"
        else ("⚠️ INCOMPLETE" if run.status == "INCOMPLETE" else run.status)
    )
    out.append(f"### logira: run {esc_md(run.run_id)} — {status} — "
               f"{d.total} detection{'s' if d.total != 1 else ''}{' (' + sev + ')' if sev else ''}")  # fmt: skip
    out.append("")
    cmd = " ".join(run.command_argv) if run.command_argv else run.command
    dur = f"{run.duration_s:g} s" if run.duration_s is not None else "running"
    exit_ = (
        f"signal {run.exit_signal}"
        if run.exit_signal
        else ("-" if run.exit_code is None else str(run.exit_code))
    )
    out.append(f"**Command:** {esc_md(_cut(cmd, 200))}  ")
    out.append(f"**Events:** {run.event_count} ({', '.join(f'{t} {n}' for t, n in r.counts.items())}) · "
               f"**duration** {dur} · **exit** {exit_} · **dropped** {run.drops.get('total', 0)}")  # fmt: skip
    if run.incomplete_reasons:
        out.append("")
        out.append("**Incomplete because:** " + "; ".join(esc_md(x) for x in run.incomplete_reasons))
    out.append("")
    if d.rules:
        out.append("| severity | rule | count | title | first seen |")
        out.append("|---|---|---:|---|---|")
        for g in d.rules[:RULES_SHOWN]:
            out.append(f"| {SEV_ICON.get(g.severity, '')} {esc_md(g.severity)} | {esc_md(g.rule_id)} | {g.count} | "
                       f"{esc_md(_cut(g.title))} | {esc_md(tf(g.first_ts))} |")  # fmt: skip
        if len(d.rules) > RULES_SHOWN:
            out.append(f"| | … {len(d.rules) - RULES_SHOWN} more rules | | | |")
        first = {}
        for item in d.items:
            first.setdefault(item.rule_id, item)
        out.append("")
        out.append("<details><summary>First evidence per rule</summary>")
        out.append("")
        for g in d.rules[:RULES_SHOWN]:
            item = first.get(g.rule_id)
            if item is not None:
                by = f" (tool call {esc_md(item.tool_call)})" if item.tool_call else ""
                out.append(f"- **{esc_md(g.rule_id)}**: {esc_md(_cut(item.message, 300))}{by}")
        out.append("")
        out.append("</details>")
    else:
        out.append("No detections: the active rules matched nothing in this run.")
    _tool_calls(out, r, tf)
    n = r.new_in_run
    if n is not None:
        out.append("")
        if not n.baseline_runs:
            out.append("**New in this run:** no earlier runs of this workspace to compare with.")
        else:
            cats = [("programs", n.programs), ("destinations", n.destinations), ("DNS names", n.dns),
                    ("written outside the workspace", n.writes_outside), ("credential/config paths", n.credentials),
                    ("detections", n.detections)]  # fmt: skip
            shown = [(c, items) for c, items in cats if items]
            if not shown:
                out.append(f"**New in this run:** nothing (compared with {esc_md(n.baseline)}, "
                           f"{n.baseline_runs} runs).")  # fmt: skip
            else:
                out.append(
                    f"**New in this run** (compared with {esc_md(n.baseline)}, {n.baseline_runs} runs):"
                )
                for c, items in shown:
                    more = f", … {len(items) - NEW_SHOWN} more" if len(items) > NEW_SHOWN else ""
                    out.append(f"- {c}: " + ", ".join(esc_md(_cut(x, 100)) for x in items[:NEW_SHOWN]) + more)
    out.append("")
    hint = full_report_hint or f"logira report {run.run_id} --format html -o report.html"
    out.append(f"Full report: {esc_md(hint)} (self-contained HTML; see also `logira explain`).")
    return "\n".join(out) + "\n"


def _tool_calls(out: list[str], r: Report, tf: TimeFormatter) -> None:
    """The agent's tool calls (declared by the agent; the counts are what the kernel saw them do)."""
    tc = r.tool_calls
    if not tc.available or not tc.calls:
        return
    out.append("")
    out.append(f"**Tool calls** ({tc.total}; declared by the agent, counts from the kernel record):")
    out.append("")
    out.append("| call | tool | command / file | start | status | execs | files | destinations | detections |")
    out.append("|---|---|---|---|---|---:|---:|---:|---|")
    for c in tc.calls[:CALLS_SHOWN]:
        what = c.command or c.file_path or c.description
        dets = ", ".join(sorted(set(c.detections)))
        out.append(f"| {esc_md(_cut(c.call_id, 40))} | {esc_md(c.tool)} | {esc_md(_cut(what, 80)) or '-'} | "
                   f"{esc_md(tf(c.start_ts)) if c.start_ts else '-'} | {esc_md(c.status)} | {c.execs} | {c.files} | "
                   f"{c.destinations} | {esc_md(dets) or '-'} |")  # fmt: skip
    if tc.total > CALLS_SHOWN:
        out.append(f"| | … {tc.total - CALLS_SHOWN} more tool calls | | | | | | | |")
