"""Best-effort parsing of the script inside `sh|bash|dash|zsh -c '…'`.

The kernel sees `bash -c 'curl … | sh'` as one exec whose argv holds the whole pipeline;
the two commands it starts are siblings with no visible pipe between them. This module
splits such a script (shlex, POSIX rules) into pipelines of commands so rules can say
"a downloader followed by a shell in the same pipeline" whatever the quoting. It handles
`|`, `|&`, `;`, `&&`, `||`, `&`, newlines, subshell parentheses, redirections, leading
`VAR=value` assignments, common wrappers (`sudo`, `env`, `exec`, `command`, `nohup`,
`time`, `nice`, `timeout`) and `$(…)`/backticks/`<(…)` (their contents are parsed as scripts
of their own). It is not a shell: anything it cannot tokenise is skipped, never raised.
"""

from __future__ import annotations

import re
import shlex

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})
_SEPARATORS = frozenset({";", "&&", "||", "&", "(", ")", "((", "))", ";;", "<(", ">("})
_PIPES = frozenset({"|", "|&"})
_REDIRECTS = frozenset({">", ">>", "<", "<<", "<<<", ">&", "<&", "&>", "&>>", ">|", "<>"})
_WRAPPERS = frozenset({"exec", "command", "nohup", "time", "builtin", "nice", "stdbuf", "setsid"})
_SUDO_VALUE_OPTS = frozenset({"-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U", "-D"})
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SUBST = re.compile(r"\$\(([^()]*)\)|`([^`]*)`|<\(([^()]*)\)")
MAX_SCRIPT = 16384  # longer scripts are cut before parsing (bounded work per event)

Command = list[str]  # argv of one simple command
Pipeline = list[Command]


def shell_script(argv: list[str]) -> str | None:
    """The `-c` script of a shell invocation (`bash -lc 'x'`, `sh -e -c x`), else None."""
    i = 1
    n = len(argv)
    while i < n:
        tok = argv[i]
        if tok == "--" or not tok.startswith("-") or tok.startswith("--"):
            if tok.startswith("--") and tok != "--":
                i += 1
                continue
            return None
        if "c" in tok[1:]:
            # the script is the first operand after the options
            j = i + 1
            while j < n and argv[j].startswith("-") and argv[j] != "-":
                if argv[j] == "--":
                    j += 1
                    break
                j += 1
            return argv[j] if j < n else None
        if tok[1:] in ("o", "O"):
            i += 2  # `-o option` takes a value
            continue
        i += 1
    return None


def _tokens(script: str) -> list[str]:
    lex = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    out: list[str] = []
    try:
        for tok in lex:
            out.append(tok)
    except ValueError:
        pass  # unbalanced quotes: keep what was tokenised
    return out


def _strip_wrappers(cmd: Command) -> Command:
    i = 0
    n = len(cmd)
    while i < n:
        tok = cmd[i]
        if _ASSIGN.match(tok):
            i += 1
        elif tok in _WRAPPERS:
            i += 1
            while i < n and cmd[i].startswith("-"):
                i += 1
        elif tok in ("env", "sudo", "doas", "timeout"):
            i += 1
            while i < n and (cmd[i].startswith("-") or _ASSIGN.match(cmd[i])):
                i += 2 if (tok in ("sudo", "doas") and cmd[i] in _SUDO_VALUE_OPTS) else 1
            if tok == "timeout" and i < n:
                i += 1  # the duration
        else:
            break
    return cmd[i:]


def parse_script(script: str, _depth: int = 0) -> list[Pipeline]:
    """Pipelines (lists of commands) found in a shell script, substitutions included."""
    script = script[:MAX_SCRIPT]
    pipelines: list[Pipeline] = []
    cur: Pipeline = []
    cmd: Command = []
    toks = _tokens(script)
    i = 0

    def end_cmd() -> None:
        nonlocal cmd
        stripped = _strip_wrappers(cmd)
        if stripped:
            cur.append(stripped)
        cmd = []

    def end_pipeline() -> None:
        nonlocal cur
        end_cmd()
        if cur:
            pipelines.append(cur)
        cur = []

    while i < len(toks):
        tok = toks[i]
        if tok in _PIPES:
            end_cmd()
        elif tok in _SEPARATORS:
            end_pipeline()
        elif tok in _REDIRECTS:
            i += 1  # skip the target
        elif tok == "$" or tok == "`":
            pass
        else:
            cmd.append(tok)
        i += 1
    end_pipeline()
    if _depth < 3 and ("$(" in script or "`" in script or "<(" in script):
        for m in _SUBST.finditer(script):
            inner = m.group(1) or m.group(2) or m.group(3) or ""
            if inner.strip():
                pipelines.extend(parse_script(inner, _depth + 1))
    return pipelines
