"""Best-effort parsing of the script inside `sh|bash|dash|zsh -c '…'`.

The kernel sees `bash -c 'curl … | sh'` as one exec whose argv holds the whole pipeline;
the two commands it starts are siblings with no visible pipe between them. This module
splits such a script (shlex, POSIX rules) into pipelines of commands so rules can say
"a downloader followed by a shell in the same pipeline" whatever the quoting. It handles
`|`, `|&`, `;`, `&&`, `||`, `&`, newlines, subshell parentheses, redirections, leading
`VAR=value` assignments, common wrappers (`sudo`, `env`, `exec`, `command`, `nohup`,
`time`, `nice`, `timeout`, `xargs`) and `$(…)`/backticks/`<(…)` (their contents are parsed as
scripts of their own). Grouping is transparent to pipes: `{ a; b; } | sh` and `( a ) | sh` pipe
every command of the group into sh, `a | { sh; }` / `a | (sh)` pipe a into the group's first
command. A command name held in a variable set earlier in the script (`c=curl; $c …`) is
replaced by its value, and `$SHELL`/`$BASH`/`$0` name a shell. It is not a shell: anything it
cannot tokenise is skipped, never raised; the data-flow rules (detect/flow.py) do not depend on
any spelling.
"""

from __future__ import annotations

import re
import shlex

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})
_SEPARATORS = frozenset({";", "&&", "||", "&", "((", "))", ";;", "<(", ">("})
_OPEN = frozenset({"(", "{"})
_CLOSE = frozenset({")", "}"})
_SHELL_VARS = {"SHELL": "sh", "BASH": "bash", "0": "sh"}
_VAR = re.compile(r"^\$(?:\{([A-Za-z_][A-Za-z0-9_]*|0)\}|([A-Za-z_][A-Za-z0-9_]*|0))$")
_XARGS_VALUE_OPTS = frozenset({"-I", "-n", "-P", "-d", "-E", "-L", "-s", "-a", "-e", "-l", "-i"})
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
        elif tok == "xargs":  # xargs [options] command …: the command runs what the pipe fed xargs
            i += 1
            while i < n and cmd[i].startswith("-"):
                opt = cmd[i]
                i += 2 if opt in _XARGS_VALUE_OPTS and opt not in ("-i", "-e", "-l") else 1
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
    variables: dict[str, str] = {}
    groups: list[int] = []  # index into pipelines where each open group started
    after_pipe = False
    i = 0

    def end_cmd() -> None:
        nonlocal cmd
        if cmd and all(_ASSIGN.match(t) for t in cmd) and len(variables) < 64:
            for t in cmd:  # `c=curl` on its own sets a variable for later commands
                name, _, value = t.partition("=")
                variables[name] = value
        stripped = _strip_wrappers(cmd)
        if stripped:
            head = _VAR.match(stripped[0])
            if head:
                name = head.group(1) or head.group(2)
                value = variables.get(name) or _SHELL_VARS.get(name)
                if value:
                    stripped = [*value.split(), *stripped[1:]]
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
        was_after_pipe, after_pipe = after_pipe, False
        if tok in _PIPES:
            end_cmd()
            after_pipe = True
        elif tok in _OPEN and not cmd:
            if not was_after_pipe:  # `a | { …` continues the pipeline into the group
                end_pipeline()
            groups.append(len(pipelines) if not was_after_pipe else max(len(pipelines) - 1, 0))
        elif tok in _CLOSE and (groups or tok == ")"):
            start = groups.pop() if groups else len(pipelines)
            end_pipeline()
            if i + 1 < len(toks) and toks[i + 1] in _PIPES:
                # `{ a; b; } | c`: every command of the group feeds c
                cur = [c for pl in pipelines[start:] for c in pl]
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
