"""The report as one self-contained HTML page: inline CSS and JS, inline SVG, no external requests.

Every string that came from the run goes through `esc_html` (render/escape.py) exactly once, at
the point it is written into the page; nothing recorded is ever placed in a script, a style, a
URL or an event-handler attribute. A Content-Security-Policy meta tag (`default-src 'none'`)
makes the page unable to load anything even if a future change forgot that rule.
"""

from __future__ import annotations

import posixpath

from logira.render.escape import esc_argv, esc_html
from logira.render.timefmt import TimeFormatter, fmt_date, fmt_iso, fmt_seconds
from logira.report.model import Detection, EventRef, ProcNode, Report

TYPE_COLORS = {"exec": "#4e79a7", "proc": "#9c755f", "file": "#59a14f", "net": "#f28e2b"}
SEV_COLORS = {
    "critical": "#7b1fa2",
    "high": "#c62828",
    "medium": "#ef6c00",
    "low": "#f9a825",
    "info": "#607d8b",
}
TREE_OPEN_DEPTH = 2  # levels of the process tree open when the page loads

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")  # fmt: skip

CSS = """
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
color:#1d2330;background:#f6f7f9}main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #d6d9de;
padding-bottom:4px}section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:12px 16px;
margin:12px 0}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;
white-space:pre-wrap;word-break:break-all}table{border-collapse:collapse;width:100%}th,td{text-align:left;
padding:3px 8px;border-bottom:1px solid #eef0f2;vertical-align:top}th{font-weight:600;color:#4a5160}
td.n{text-align:right;font-variant-numeric:tabular-nums}.badge{display:inline-block;padding:2px 10px;
border-radius:12px;font-weight:700;color:#fff}.COMPLETE{background:#2e7d32}.INCOMPLETE{background:#c62828}
.RUNNING{background:#1565c0}.sev{display:inline-block;min-width:62px;text-align:center;border-radius:4px;
color:#fff;font-size:12px;font-weight:600;padding:0 6px}.kv td:first-child{color:#5f6673;width:150px}
details{margin:2px 0}details.proc{margin-left:18px}summary{cursor:pointer}.muted{color:#6a7280}
.legend span{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
article.det{border-left:4px solid #999;padding:6px 10px;margin:8px 0;background:#fafbfc}
.toolbar button{margin-right:6px}.note{color:#6a7280;font-style:italic}.new li{margin:2px 0}
svg text{font-size:10px;fill:#5f6673}
"""

JS = """
(function(){
  function setAll(open){
    var ds=document.querySelectorAll('#processes details');
    for(var i=0;i<ds.length;i++){ds[i].open=open;}
  }
  var e=document.getElementById('tree-expand'), c=document.getElementById('tree-collapse');
  if(e){e.addEventListener('click',function(){setAll(true);});}
  if(c){c.addEventListener('click',function(){setAll(false);});}
  var f=document.getElementById('files-filter');
  if(f){f.addEventListener('input',function(){
    var q=f.value.toLowerCase(), rows=document.querySelectorAll('#files tr.file');
    for(var i=0;i<rows.length;i++){
      rows[i].style.display=rows[i].textContent.toLowerCase().indexOf(q)<0?'none':'';
    }
  });}
  document.documentElement.setAttribute('data-ready','1');
})();
"""


def h(s: object) -> str:
    return esc_html(str(s)) if s is not None else ""


def _sev(sev: str) -> str:
    color = SEV_COLORS.get(sev, "#607d8b")
    return f'<span class="sev" style="background:{color}">{h(sev)}</span>'


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render_html(r: Report) -> str:
    tf = TimeFormatter(r.run.start_ts, "rel")
    parts: list[str] = []
    w = parts.append
    run = r.run
    w('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
    w(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f'<meta name="generator" content="{h(r.generator)}">')
    w(f"<title>logira report {h(run.run_id)}</title><style>{CSS}</style></head><body><main>")
    _header(w, r)
    if r.new_in_run is not None:
        _new_items(w, r)
    _timeline(w, r)
    _tool_calls(w, r, tf)
    _processes(w, r)
    _files(w, r)
    _egress(w, r)
    _detections(w, r, tf)
    w(f'<p class="muted">Generated {h(fmt_iso(r.generated_at))} by {h(r.generator)}. '
      f"Report schema {h(r.schema)}.</p>")  # fmt: skip
    w(f"</main><script>{JS}</script></body></html>\n")
    return "".join(parts)


def _header(w, r: Report) -> None:
    run = r.run
    w(f'<h1>Run <span id="run-id" class="mono">{h(run.run_id)}</span> '
      f'<span id="status" class="badge {h(run.status)}">{h(run.status)}</span></h1>')  # fmt: skip
    w('<section id="run-header"><table class="kv">')
    cmd = esc_argv(run.command_argv) if run.command_argv else run.command
    rows = [
        ("command", f'<code id="command">{h(cmd)}</code>'),
        ("tool", h(run.tool or "-")),
        ("cwd", f"<code>{h(run.cwd or '-')}</code>"),
        ("workspace", f"<code>{h(run.workspace)}</code>"),
        ("user", f"{h(run.user or '?')} (uid {run.uid})" + (f" on {h(run.host)}" if run.host else "")),
        ("started", h(fmt_date(run.start_ts)) + (f", duration {h(fmt_seconds(int(run.duration_s * 1e9)))}"
                                                  if run.duration_s is not None else " (still running)")),
        ("exit", h(f"killed by signal {run.exit_signal}" if run.exit_signal else
                   ("-" if run.exit_code is None else run.exit_code))),
        ("events", f"{run.event_count} recorded: " + ", ".join(f"{h(t)} {n}" for t, n in r.counts.items())),
        ("dropped", f"{run.drops.get('total', 0)} (kernel {run.drops.get('kernel_total', 0)}, reader "
                    f"{run.drops.get('reader', 0)}, queue {run.drops.get('queue', 0)})"),
        ("versions", f"logira {h(run.logira_version or '?')}, kernel {h(run.kernel_release or '?')}"),
    ]  # fmt: skip
    for k, v in rows:
        w(f"<tr><td>{k}</td><td>{v}</td></tr>")
    w("</table>")
    if run.incomplete_reasons:
        w('<div id="incomplete-reasons"><strong>Why INCOMPLETE:</strong><ul>')
        for reason in run.incomplete_reasons:
            w(f"<li>{h(reason)}</li>")
        w("</ul></div>")
    if run.stragglers:
        w(f"<p>Stragglers still running at the end: {h(', '.join(map(str, run.stragglers)))}</p>")
    d = r.detections
    sev = ", ".join(f"{_sev(s)} {n}" for s, n in d.by_severity.items())
    w(f'<p id="headline"><strong>{d.total} detection{"s" if d.total != 1 else ""}</strong>'
      f"{' — ' + sev if sev else ''}</p></section>")  # fmt: skip


def _new_items(w, r: Report) -> None:
    n = r.new_in_run
    assert n is not None
    w('<h2>New in this run</h2><section id="new-in-run" class="new">')
    if not n.baseline_runs:
        w('<p class="note">No earlier runs of this workspace to compare with.</p></section>')
        return
    w(f'<p class="muted">Compared with {h(n.baseline)} ({n.baseline_runs} runs).</p>')
    groups = [("Programs executed", n.programs), ("Destinations", n.destinations), ("DNS names", n.dns),
              ("Written outside the workspace", n.writes_outside), ("Credential / config paths", n.credentials),
              ("Detections", n.detections)]  # fmt: skip
    empty = True
    for title, items in groups:
        if items:
            empty = False
            w(f"<h3>{title} ({len(items)})</h3><ul>")
            for it in items:
                w(f"<li><code>{h(it)}</code></li>")
            w("</ul>")
    if empty:
        w("<p>Nothing new: every program, destination and path was seen in earlier runs.</p>")
    if n.truncated:
        w('<p class="note">Lists are capped; `logira diff` shows them all.</p>')
    w("</section>")


def _timeline(w, r: Report) -> None:
    tl = r.timeline
    w('<h2>Timeline</h2><section id="timeline">')
    if not tl.buckets:
        w('<p class="note">No events.</p></section>')
        return
    width, height, left, bottom, top = 1100, 180, 48, 22, 14
    nb = int(max(b.t for b in tl.buckets) / tl.bucket_s) + 1
    bw = (width - left - 8) / max(nb, 1)
    peak = max(sum(v for k, v in b.counts.items() if k in TYPE_COLORS) for b in tl.buckets) or 1
    scale = (height - bottom - top) / peak
    unit = "s" if tl.bucket_s == 1 else f"{tl.bucket_s:g} s"
    w(
        f'<p class="muted">Events per {h(unit)} by type; detections marked in red (click one to jump to it).</p>'
    )
    w(f'<svg id="timeline-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
      f'width="100%" role="img" aria-label="events per second by type">')  # fmt: skip
    w(f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#aab"/>')
    w(f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>')
    w(f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>')
    for b in tl.buckets:
        x = left + (b.t / tl.bucket_s) * bw
        y = height - bottom
        tip = ", ".join(f"{k} {v}" for k, v in b.counts.items())
        w(f'<g class="bucket"><title>+{b.t:g}s: {h(tip)}</title>')
        for typ, color in TYPE_COLORS.items():
            n = b.counts.get(typ, 0)
            if n:
                bh = n * scale
                y -= bh
                w(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bw - 0.5, 0.5):.1f}" height="{bh:.1f}" fill="{color}"/>'
                )
        w("</g>")
    span = nb * tl.bucket_s
    for i in range(6):
        t = span * i / 5
        w(
            f'<text x="{left + (t / tl.bucket_s) * bw:.1f}" y="{height - 6}" text-anchor="middle">+{t:.4g}s</text>'
        )
    for m in tl.marks:
        x = left + (m.t / tl.bucket_s) * bw
        color = SEV_COLORS.get(m.severity, "#c62828")
        w(f'<a href="#det-{m.seq}" class="mark"><title>{h(m.severity)} {h(m.rule_id)} at +{m.t:g}s</title>'
          f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="{color}" stroke-width="1.5"/>'
          f'<polygon points="{x - 4:.1f},{top - 8} {x + 4:.1f},{top - 8} {x:.1f},{top}" fill="{color}"/></a>')  # fmt: skip
    w('</svg><div class="legend">')
    for typ, color in TYPE_COLORS.items():
        w(f'<span><i style="background:{color}"></i>{typ}</span>')
    w('<span><i style="background:#c62828"></i>detection</span></div>')
    if tl.marks_total > len(tl.marks):
        w(f'<p class="note">{tl.marks_total - len(tl.marks)} more detections not marked.</p>')
    w("</section>")


def _tool_calls(w, r: Report, tf: TimeFormatter) -> None:
    tc = r.tool_calls
    w('<h2>Tool calls</h2><section id="tool-calls">')
    if not tc.available or not tc.calls:
        w(f'<p class="note">{h(tc.note or "This run has no tool calls.")}</p></section>')
        return
    w(f'<p class="note">{h(tc.note)}</p>')
    w("<table><tr><th>call</th><th>tool</th><th>command / file</th><th>start</th><th>duration</th><th>source</th>"
      "<th>execs</th><th>files</th><th>destinations</th><th>detections</th></tr>")  # fmt: skip
    for c in tc.calls:
        start = h(tf(c.start_ts)) if c.start_ts else "-"
        dur = f"{c.duration_ms} ms" if c.duration_ms is not None else "-"
        what = c.command or c.file_path or c.description
        dets = ", ".join(c.detections)
        w(f'<tr class="tool-call" id="call-{h(c.call_id)}"><td class="mono">{h(c.call_id)}</td><td>{h(c.tool)}</td>'
          f"<td><code>{h(what)}</code></td><td>{start}</td><td>{h(dur)}</td><td>{h(c.source)}"
          f"{' (declared)' if c.declared else ''}</td><td class=n>{c.execs}</td><td class=n>{c.files}</td>"
          f"<td class=n>{c.destinations}</td><td>{h(dets) or '-'}</td></tr>")  # fmt: skip
    w("</table>")
    if tc.truncated:
        w(f'<p class="note">{tc.total - len(tc.calls)} more tool calls not shown.</p>')
    w("</section>")


def _proc_label(n: ProcNode) -> str:
    argv = esc_argv(n.argv) if n.argv else n.exe
    label = f'<span class="mono">{n.pid}</span> <code>{h(argv)}</code>'
    if n.execs > 1:
        label += f' <span class="muted">({n.execs} execs)</span>'
    if n.cwd:
        label += f' <span class="muted">cwd {h(n.cwd)}</span>'
    return label


def _proc(w, root: ProcNode) -> None:
    """One subtree as nested <details>, iteratively (a chain of processes can be thousands deep)."""
    stack: list[tuple[ProcNode | None, int]] = [(root, 0)]
    while stack:
        n, depth = stack.pop()
        if n is None:  # end of a node's children
            w("</details>")
            continue
        if not n.children:
            w(f'<div class="proc leaf" style="margin-left:18px">{_proc_label(n)}</div>')
            continue
        opened = " open" if depth < TREE_OPEN_DEPTH else ""
        w(f'<details class="proc"{opened}><summary>{_proc_label(n)} <span class="muted">'
          f"[{len(n.children)} children]</span></summary>")  # fmt: skip
        stack.append((None, depth))
        stack.extend((c, depth + 1) for c in reversed(n.children))


def _processes(w, r: Report) -> None:
    p = r.processes
    w(f'<h2>Process tree ({p.total} processes that exec\'d)</h2><section id="processes">')
    if not p.roots:
        w('<p class="note">No process exec\'d.</p></section>')
        return
    w('<div class="toolbar"><button type="button" id="tree-expand">Expand all</button>'
      '<button type="button" id="tree-collapse">Collapse all</button></div>')  # fmt: skip
    for root in p.roots:
        _proc(w, root)
    if p.truncated:
        w(
            f'<p class="note">Tree capped: {p.shown} of {p.total} processes shown (logira query --type exec).</p>'
        )
    w("</section>")


def _files(w, r: Report) -> None:
    f = r.files
    w(f'<h2>Files changed ({f.total_paths} paths)</h2><section id="files">')
    if not f.dirs:
        w('<p class="note">No file was changed.</p>')
    else:
        w('<input type="search" id="files-filter" placeholder="filter paths" aria-label="filter paths">')
        for d in f.dirs:
            w(f'<details class="dir" open><summary><code>{h(d.dir)}/</code> <span class="muted">'
              f"({len(d.changes)})</span></summary><table>")  # fmt: skip
            for c in d.changes:
                name = posixpath.basename(c.path) or c.path
                tail = f" → <code>{h(c.path2)}</code>" if c.path2 else ""
                w(f'<tr class="file"><td style="width:90px">{h(c.op)}</td><td><code>{h(name)}</code>{tail}</td>'
                  f"<td class=n>{'&times;' + str(c.count) if c.count > 1 else ''}</td></tr>")  # fmt: skip
            w("</table></details>")
        if f.truncated:
            w(
                f'<p class="note">Capped: {f.shown} of {f.total_paths} paths shown (logira query --type file).</p>'
            )
    w(f'<h3 id="denied">Denied attempts ({f.denied_total})</h3>')
    if not f.denied:
        w('<p class="note">None: the kernel refused no file operation.</p>')
    else:
        w("<table><tr><th>op</th><th>path</th><th>error</th><th>count</th></tr>")
        for a in f.denied:
            w(f'<tr class="denied"><td>{h(a.op)}</td><td><code>{h(a.path)}</code></td><td>{h(a.error)}</td>'
              f"<td class=n>{a.count}</td></tr>")  # fmt: skip
        w("</table>")
    w("</section>")


def _egress(w, r: Report) -> None:
    e = r.egress
    w(f'<h2>Network destinations ({e.total})</h2><section id="egress">')
    if not e.destinations:
        w('<p class="note">No network destination.</p>')
    else:
        w("<table><tr><th>destination</th><th>DNS names</th><th>proto</th><th>ops</th><th>count</th>"
          "<th>bytes sent</th><th>failed</th></tr>")  # fmt: skip
        for d in e.destinations:
            w(f'<tr class="dest"><td><code>{h(d.dst)}</code></td><td>{h(", ".join(d.dns)) or "-"}</td>'
              f"<td>{h(d.proto)}</td><td>{h(', '.join(d.ops))}</td><td class=n>{d.count}</td>"
              f"<td class=n>{_fmt_bytes(d.bytes)}</td><td class=n>{d.failed or ''}</td></tr>")  # fmt: skip
        w("</table>")
        if e.truncated:
            w('<p class="note">Capped (logira query --type net shows every connection).</p>')
    if e.dns:
        w("<p>DNS names queried: " + ", ".join(f"<code>{h(n)}</code>" + (f" &times;{c}" if c > 1 else "")
                                              for n, c in e.dns) + "</p>")  # fmt: skip
    w("</section>")


def _event(ref: EventRef, tf: TimeFormatter) -> str:
    return (f'seq {ref.seq} <span class="muted">{h(tf(ref.ts))}</span> {h(ref.type)} pid {ref.pid}: '
            f"<code>{h(ref.summary)}</code>")  # fmt: skip


def _detection(w, d: Detection, tf: TimeFormatter) -> None:
    color = SEV_COLORS.get(d.severity, "#607d8b")
    w(f'<article class="det" id="det-{d.seq}" style="border-left-color:{color}">')
    w(f"<div>{_sev(d.severity)} <strong>{h(d.rule_id)}</strong> {h(d.title)} "
      f'<span class="muted">seq {d.seq}, {h(tf(d.ts))}</span></div>')  # fmt: skip
    w(f'<div class="message"><code>{h(d.message)}</code></div>')
    if d.tool_call:
        w(f'<div>tool call: <span class="mono">{h(d.tool_call)}</span></div>')
    if d.related is not None:
        w(f"<div>event: {_event(d.related, tf)}</div>")
    if d.lineage:
        w('<div>lineage:<ol class="lineage">')
        for i, item in enumerate(d.lineage):
            who = "process" if i == 0 else ("parent" if i == 1 else "ancestor")
            argv = esc_argv(item.argv) if item.argv else item.exe
            cwd = f' <span class="muted">cwd {h(item.cwd)}</span>' if item.cwd else ""
            w(f"<li>{who} pid {item.pid} <code>{h(argv)}</code>{cwd}</li>")
        w("</ol></div>")
    if d.steps:
        w("<div>steps:<ol>")
        for s in d.steps:
            w(f"<li>{_event(s, tf)}</li>")
        w("</ol></div>")
    w("</article>")


def _detections(w, r: Report, tf: TimeFormatter) -> None:
    d = r.detections
    w(f'<h2>Detections ({d.total})</h2><section id="detections">')
    if not d.rules:
        w('<p class="note">No detections: the active rules matched nothing in this run.</p></section>')
        return
    w("<table><tr><th>severity</th><th>rule</th><th>title</th><th>count</th><th>first</th><th>last</th></tr>")
    for g in d.rules:
        w(f'<tr class="rule"><td>{_sev(g.severity)}</td><td class="mono">{h(g.rule_id)}</td><td>{h(g.title)}'
          f'{"<br><span class=muted>" + h(g.description) + "</span>" if g.description else ""}</td>'
          f"<td class=n>{g.count}</td><td>{h(tf(g.first_ts))}</td><td>{h(tf(g.last_ts))}</td></tr>")  # fmt: skip
    w("</table><h3>Evidence</h3>")
    for det in d.items:
        _detection(w, det, tf)
    if d.truncated:
        w(f'<p class="note">{d.total - len(d.items)} more detections (logira explain, logira query --type '
          "detection).</p>")  # fmt: skip
    w("</section>")
