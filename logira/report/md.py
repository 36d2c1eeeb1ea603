"""The report as compact GitHub-flavoured Markdown, for `$GITHUB_STEP_SUMMARY` or a PR comment.

Headline, the detections table, what is new in this run, and a hint to the full report. Every
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
                out.append(f"- **{esc_md(g.rule_id)}**: {esc_md(_cut(item.message, 300))}")
        out.append("")
        out.append("</details>")
    else:
        out.append("No detections: the active rules matched nothing in this run.")
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
