"""Rules bound to one run (home, workspace) and compiled into matchers, once per Detector.

Every glob and regex is compiled here; nothing is compiled per event. Each condition
class has `match(ctx)` taking the event context built by the engine.
"""

from __future__ import annotations

import posixpath

from logira.detect import schema as S
from logira.detect.flow import Flow
from logira.detect.globs import compile_globs, is_glob
from logira.detect.netmatch import AddrMatcher, parse_ports
from logira.detect.rx import MAX_MEM, Regex
from logira.detect.shell import SHELLS, parse_script, shell_script
from logira.detect.template import Template
from logira.detect.validate import step_alternatives, when_type
from logira.model.execinfo import trusted_image, trusted_script
from logira.model.proctree import ProcessTree, ProcInfo
from logira.model.record import ExecData

MAX_MATCH_TEXT = 16384  # regexes see at most this much of a command line / script (bounded work)
_OUTBOUND = frozenset({"connect", "send"})
_INBOUND = frozenset({"bind", "listen", "accept"})


def _base(path: str) -> str:
    return path.rpartition("/")[2]


class ProgramMatcher:
    """Program globs: without "/" they match a basename, with "/" the full path."""

    __slots__ = ("base", "full", "literal_names")

    def __init__(self, patterns: list[str], home: str, workspace: str, mem: int = MAX_MEM) -> None:
        self.base = compile_globs([p for p in patterns if "/" not in p], max_mem=mem)
        self.full = compile_globs(
            [p for p in patterns if "/" in p], home=home, workspace=workspace, max_mem=mem
        )
        lits = [p for p in patterns if "/" not in p and not is_glob(p)]
        # exact basenames allow dispatch by dict lookup when every pattern is one
        self.literal_names = frozenset(lits) if len(lits) == len(patterns) else None

    def __call__(self, filename: str, argv0: str) -> bool:
        if self.base is not None and (
            self.base.test(_base(filename)) or (argv0 and self.base.test(_base(argv0)))
        ):
            return True
        return self.full is not None and self.full.test(filename)

    def trusted(self, filename: str, script: str) -> bool:
        """For exceptions: kernel names only, never argv[0] (`exec -a ssh cat …` is cat): the
        binary that ran, or the script it was asked to run (when that lives in a system dir)."""
        for name in (filename, script if trusted_script(script) else ""):
            if name and (
                (self.base is not None and self.base.test(_base(name)))
                or (self.full is not None and self.full.test(name))
            ):
                return True
        return False


class ParsedArgs:
    __slots__ = ("longs", "positionals", "raw", "shorts")

    def __init__(self, args: list[str], value_opts: frozenset[str], posix: bool,
                 end_opts: frozenset[str] = frozenset()) -> None:  # fmt: skip
        shorts: set[str] = set()
        longs: set[str] = set()
        raw: set[str] = set()
        pos: list[str] = []
        i, n = 0, len(args)
        while i < n:
            t = args[i]
            if t == "--":
                pos.extend(args[i + 1 :])
                break
            if len(t) > 1 and t[0] == "-":
                name, eq, _ = t.partition("=")
                raw.add(name)
                if t[1] == "-":
                    longs.add(name)
                    if not eq and name in value_opts:
                        i += 1
                elif len(name) > 2 and name in value_opts:
                    if not eq:
                        i += 1  # single-dash long option with a value (-chdir DIR)
                else:
                    for j in range(1, len(t)):
                        c = t[j]
                        shorts.add(c)
                        if "-" + c in end_opts:  # the program is this option's value: no operands
                            self.shorts, self.longs, self.raw, self.positionals = shorts, longs, raw, pos
                            return
                        if "-" + c in value_opts:
                            if j == len(t) - 1:
                                i += 1  # `-p 22`: the value is the next token
                            break  # `-p22`: the rest of the cluster is the value
            else:
                pos.append(t)
                if posix:
                    pos.extend(args[i + 1 :])
                    break
            i += 1
        self.shorts, self.longs, self.raw, self.positionals = shorts, longs, raw, pos

    def has(self, alts: tuple[str, ...]) -> bool:
        for a in alts:
            if a[1] == "-":
                if a in self.longs:
                    return True
            elif len(a) == 2:
                if a[1] in self.shorts:
                    return True
            elif a in self.raw:
                return True
        return False


class ExecCtx:
    """One exec (or one command of a shell script) with lazily derived views."""

    __slots__ = (
        "_cmdline",
        "_parsed",
        "_pipelines",
        "_resolved",
        "_script",
        "argv",
        "cut_tail",
        "cwd",
        "exe_kind",
        "fileless",
        "filename",
        "home",
        "image_script",
        "truncated",
        "trusted",
    )

    def __init__(
        self, filename: str, argv: list[str], cwd: str, home: str, *, trusted: bool = False,
        image_script: str = "", exe_kind: str = "", fileless: bool = False, truncated: bool = False,
        cut_tail: str = "",
    ) -> None:  # fmt: skip
        self.filename = filename
        self.argv = argv
        self.cwd = cwd
        self.home = home
        self.trusted = trusted  # the image is a real, system-owned file (may grant exceptions)
        self.image_script = image_script  # the script the kernel was asked to run (ExecData.script)
        self.exe_kind = exe_kind
        self.fileless = fileless
        self.truncated = truncated
        self.cut_tail = cut_tail  # argv was cut inside an argument: the end of that argument
        self._cmdline: str | None = None
        self._parsed: dict[tuple[frozenset[str], bool, frozenset[str]], ParsedArgs] = {}
        self._resolved: dict[str, str] = {}
        self._script: str | bool | None = False
        self._pipelines: list[list[list[str]]] | None = None

    @classmethod
    def of(cls, d: ExecData, home: str) -> ExecCtx:
        """The context of a stored exec. When argv was cut inside one argument (head and tail
        both partial), the two pieces are matched as that one argument, joined by a newline (for
        a shell script: a command separator that keeps the quoting of both pieces)."""
        argv = d.argv or [d.filename]
        cut_tail = ""
        k = d.argv_cut
        if k and d.argv_head_partial and d.argv_tail_partial and 0 < k < len(argv):
            cut_tail = argv[k]
            argv = [*argv[: k - 1], argv[k - 1] + "\n" + cut_tail, *argv[k + 1 :]]
        return cls(d.filename, argv, d.cwd, home, trusted=trusted_image(d.exe_kind, d.fileless, d.exe_writable),
                   image_script=d.script, exe_kind=d.exe_kind, fileless=d.fileless, truncated=d.argv_truncated,
                   cut_tail=cut_tail)  # fmt: skip

    @property
    def cmdline(self) -> str:
        if self._cmdline is None:
            self._cmdline = " ".join(self.argv)[:MAX_MATCH_TEXT]
        return self._cmdline

    def parsed(self, value_opts: frozenset[str], posix: bool, end_opts: frozenset[str] = frozenset()) -> ParsedArgs:
        key = (value_opts, posix, end_opts)
        p = self._parsed.get(key)
        if p is None:
            p = self._parsed[key] = ParsedArgs(self.argv[1:], value_opts, posix, end_opts)
        return p

    @property
    def script(self) -> str | None:
        if self._script is False:
            s = None
            if self.argv and (_base(self.filename) in SHELLS or _base(self.argv[0]) in SHELLS):
                argv = self.argv[1:] if _base(self.argv[0]) == "busybox" else self.argv
                s = shell_script(argv)
            self._script = s[:MAX_MATCH_TEXT] if s else s
        return self._script  # type: ignore[return-value]

    @property
    def pipelines(self) -> list[list[list[str]]]:
        if self._pipelines is None:
            s = self.script
            self._pipelines = parse_script(s) if s else []
            if s and self.cut_tail and self.cut_tail in s:
                # the end of a cut script on its own too: the missing middle may have left a quote
                # open; retry after each of the first quote characters (bounded)
                tail = self.cut_tail
                self._pipelines += parse_script(tail)
                for i in [i for i, c in enumerate(tail) if c in "'\""][:4]:
                    self._pipelines += parse_script(tail[i + 1 :])
        return self._pipelines

    def resolve(self, tok: str) -> str:
        """tok as an absolute, normalised path (cached: every `paths` condition resolves the same
        operands, and with a 4 KiB cwd normalising them all dominates the cost of an event)."""
        done = self._resolved.get(tok)
        if done is not None:
            return done
        out = self._resolved[tok] = self._resolve(tok)
        return out

    def _resolve(self, tok: str) -> str:
        if tok == "~" or tok.startswith("~/"):
            tok = self.home + tok[1:]
        elif not tok.startswith("/"):
            tok = posixpath.join(self.cwd or "/", tok)
        return posixpath.normpath(tok)


class CExec:
    __slots__ = ("args", "cmdline", "exe_kind", "fileless", "flags", "is_except", "paths", "program", "script",
                 "shell", "spec", "subcommand", "truncated")  # fmt: skip

    def __init__(self, c: S.ExecCond, home: str, ws: str, mem: int = MAX_MEM, *, is_except: bool = False) -> None:
        # in an exception, names come from the kernel only and need a trusted image (ProgramMatcher.trusted)
        self.is_except = is_except
        self.exe_kind = frozenset(c.exe_kind) if c.exe_kind else None
        self.fileless, self.truncated = c.fileless, c.truncated
        self.program = ProgramMatcher(c.program, home, ws, mem) if c.program else None
        self.flags = [tuple([g] if isinstance(g, str) else g) for g in c.flags]
        self.args = [
            compile_globs([g] if isinstance(g, str) else list(g), home=home, workspace=ws, max_mem=mem)
            for g in c.args
        ]
        self.paths = compile_globs(c.paths, home=home, workspace=ws, max_mem=mem)
        self.script = compile_globs(c.script, home=home, workspace=ws, max_mem=mem)
        self.subcommand = [tuple(s.split()) for s in c.subcommand]
        self.spec = (frozenset(c.value_opts), c.posix, frozenset(c.end_opts))
        self.cmdline = Regex(c.cmdline, max_mem=mem) if c.cmdline else None
        self.shell: tuple[list[CExec], CExec | None, Regex | None] | None = None
        if c.shell is not None:
            sh = c.shell
            self.shell = (
                [CExec(p, home, ws, mem) for p in sh.pipe],
                CExec(sh.command, home, ws, mem) if sh.command else None,
                Regex(sh.regex, max_mem=mem) if sh.regex else None,
            )

    def match(self, ctx: ExecCtx) -> bool:
        argv = ctx.argv
        if self.program is not None:
            if self.is_except:
                if not (ctx.trusted and self.program.trusted(ctx.filename, ctx.image_script)):
                    return False
            elif not self.program(ctx.filename, argv[0] if argv else ""):
                return False
        if self.exe_kind is not None and ctx.exe_kind not in self.exe_kind:
            return False
        if self.fileless is not None and ctx.fileless != self.fileless:
            return False
        if self.truncated is not None and ctx.truncated != self.truncated:
            return False
        if self.flags or self.subcommand or self.paths is not None or self.script is not None:
            p = ctx.parsed(*self.spec)
            for alts in self.flags:
                if not p.has(alts):
                    return False
            if self.subcommand:
                pos = p.positionals
                if not any(tuple(pos[: len(s)]) == s for s in self.subcommand):
                    return False
            if self.script is not None and not (
                p.positionals and self.script.test(ctx.resolve(p.positionals[0]))
            ):
                return False
            if self.paths is not None:
                m = self.paths.test
                if not any(m(ctx.resolve(t)) for t in p.positionals):
                    return False
        for rx in self.args:
            assert rx is not None
            if not any(rx.test(t) for t in argv[1:]):
                return False
        if self.cmdline is not None:
            # an exception's command line starts with the binary that ran, not the forgeable argv[0]
            text = " ".join([ctx.filename, *argv[1:]])[:MAX_MATCH_TEXT] if self.is_except else ctx.cmdline
            if not self.cmdline.test(text):
                return False
        if self.shell is not None:
            script = ctx.script
            if script is None:
                return False
            pipe, command, regex = self.shell
            if regex is not None and not regex.test(script):
                return False
            if command is not None and not any(
                command.match(ExecCtx(c[0], c, ctx.cwd, ctx.home)) for pl in ctx.pipelines for c in pl
            ):
                return False
            if pipe and not any(_pipe_match(pipe, pl, ctx) for pl in ctx.pipelines):
                return False
        return True


def _pipe_match(conds: list[CExec], pipeline: list[list[str]], ctx: ExecCtx) -> bool:
    k = 0
    for cmd in pipeline:
        if conds[k].match(ExecCtx(cmd[0], cmd, ctx.cwd, ctx.home)):
            k += 1
            if k == len(conds):
                return True
    return False


class FileCtx:
    __slots__ = ("aliases", "data", "names")

    def __init__(self, data: object, names: tuple[str, ...], aliases: tuple[str, ...] = ()) -> None:
        self.data = data
        self.names = names  # the real names the op touches
        self.aliases = aliases  # the same names as written, and a sensitive file's real name (same dev/ino)


def other_names(d: object) -> tuple[str, ...]:
    """Names a file event also goes by: the literal path(s) and the sensitive file it is."""
    out = []
    op = d.op  # type: ignore[attr-defined]
    lit, lit2 = d.path_literal, d.path2_literal  # type: ignore[attr-defined]
    if lit and op != "symlink":  # a symlink's literal path is its target string, not a name it touches
        out.append(lit)
    if lit2:
        out.append(lit2)
    if d.same_file_as:  # type: ignore[attr-defined]
        out.append(d.same_file_as)  # type: ignore[attr-defined]
    return tuple(out)


def file_names(op: str, path: str, path2: str) -> tuple[str, ...]:
    """The names an operation touches, for `path:` globs."""
    if op == "rename" or op == "link":
        return (path, path2) if path2 else (path,)
    if op == "symlink":
        return (path2,) if path2 else ()
    return (path,)


class CFile:
    __slots__ = (
        "all_names",
        "exec_bit",
        "failed",
        "ops",
        "path",
        "path2",
        "setuid",
        "src",
        "unverified",
        "workspace",
        "ws",
    )

    def __init__(
        self, c: S.FileCond, home: str, ws: str, mem: int = MAX_MEM, *, all_names: bool = False
    ) -> None:
        # in `except`, `path` must match every name the op touches: renaming x.sample to x
        # is not excepted by an exception for *.sample
        self.all_names = all_names
        self.ops = frozenset(c.op) if c.op else None
        self.path = compile_globs(c.path, home=home, workspace=ws, max_mem=mem)
        self.path2 = compile_globs(c.path2, home=home, workspace=ws, max_mem=mem)
        self.src = compile_globs(c.src, home=home, workspace=ws, max_mem=mem)
        self.workspace = c.workspace
        self.ws = ws.rstrip("/")
        self.exec_bit, self.setuid, self.failed = c.exec_bit, c.setuid, c.failed
        self.unverified = compile_globs(c.unverified, home=home, workspace=ws, max_mem=mem)

    def match(self, ctx: FileCtx) -> bool:
        d = ctx.data
        if self.ops is not None and d.op not in self.ops:  # type: ignore[attr-defined]
            return False
        if self.path is not None:
            m = self.path.test
            if self.all_names:  # an exception must cover every real name (aliases never widen it)
                if not ctx.names or not all(m(n) for n in ctx.names):
                    return False
            elif not any(m(n) for n in ctx.names) and not any(m(n) for n in ctx.aliases):
                return False
        if (
            self.path2 is not None
            and not (d.path2 and self.path2.test(d.path2))  # type: ignore[attr-defined]
            and (self.all_names or not (d.path2_literal and self.path2.test(d.path2_literal)))  # type: ignore[attr-defined]
        ):
            return False
        if self.src is not None:
            if d.op not in ("link", "symlink"):  # type: ignore[attr-defined]
                return False
            # symlink: `path` is the target made absolute against the link's directory, the literal
            # target is kept beside it; both are matched (`ln -s ../.ssh/id_rsa x` and the absolute form)
            if not self.src.test(d.path) and not (  # type: ignore[attr-defined]
                not self.all_names and d.path_literal and self.src.test(d.path_literal)  # type: ignore[attr-defined]
            ):
                return False
        if self.workspace:
            p = ctx.names[-1] if ctx.names else d.path  # type: ignore[attr-defined]
            inside = p == self.ws or p.startswith(self.ws + "/")
            if inside != (self.workspace == "inside"):
                return False
        if self.exec_bit is not None:
            mode = d.mode  # type: ignore[attr-defined]
            if (mode >= 0 and mode & 0o111 != 0) != self.exec_bit:
                return False
        if self.setuid is not None:
            mode = d.mode  # type: ignore[attr-defined]
            if (mode >= 0 and mode & 0o6000 != 0) != self.setuid:
                return False
        if self.unverified is not None and not (d.path_unverified and self.unverified.test(d.path_unverified)):  # type: ignore[attr-defined]
            return False
        return self.failed is None or bool(d.errno or d.ret < 0) == self.failed  # type: ignore[attr-defined]


class CNet:
    __slots__ = (
        "bytes_min", "dns", "dst", "failed", "family", "label_min", "mismatch", "name_min", "ops", "outcome",
        "ports", "proto", "run_bytes_min", "src",
    )  # fmt: skip

    def __init__(self, c: S.NetCond, mem: int = MAX_MEM) -> None:
        ops = set(c.op) if c.op else None
        if c.direction:
            d = _OUTBOUND if c.direction == "outbound" else _INBOUND
            ops = (ops & d) if ops is not None else set(d)
        self.ops = frozenset(ops) if ops is not None else frozenset(S.NET_OPS_DEFAULT)
        self.proto = frozenset(c.proto) if c.proto else None
        self.family = frozenset(c.family) if c.family else None
        ports = parse_ports(c.port)
        assert not isinstance(ports, str)
        self.ports = ports if c.port else None
        self.dst = AddrMatcher(c.dst) if c.dst else None
        self.src = AddrMatcher(c.src) if c.src else None
        self.dns = compile_globs([p.lower() for p in c.dns], max_mem=mem)
        self.label_min, self.name_min, self.failed = c.dns_label_min, c.dns_name_min, c.failed
        self.mismatch, self.bytes_min, self.run_bytes_min = c.peer_mismatch, c.bytes_min, c.run_bytes_min
        self.outcome = frozenset(c.outcome) if c.outcome else None

    def match(self, d: object) -> bool:
        if self.ops is not None and d.op not in self.ops:  # type: ignore[attr-defined]
            return False
        if self.proto is not None and d.proto not in self.proto:  # type: ignore[attr-defined]
            return False
        if self.family is not None and d.family not in self.family:  # type: ignore[attr-defined]
            return False
        if self.ports is not None:
            port = d.src_port if d.op in _INBOUND else d.dst_port  # type: ignore[attr-defined]
            singles, ranges = self.ports
            if port not in singles and not any(lo <= port <= hi for lo, hi in ranges):
                return False
        if self.dst is not None and not self.dst(d.dst_ip):  # type: ignore[attr-defined]
            return False
        if self.src is not None and not self.src(d.src_ip):  # type: ignore[attr-defined]
            return False
        if self.mismatch is not None and bool(d.peer_mismatch) != self.mismatch:  # type: ignore[attr-defined]
            return False
        if self.outcome is not None and d.outcome not in self.outcome:  # type: ignore[attr-defined]
            return False
        if self.bytes_min and d.bytes < self.bytes_min:  # type: ignore[attr-defined]
            return False
        if self.run_bytes_min and d.run_dst_bytes < self.run_bytes_min:  # type: ignore[attr-defined]
            return False
        if self.dns is not None or self.label_min or self.name_min:
            # every question of the message: a second question must not hide a name
            names = d.dns_qnames or ([d.dns_qname] if d.dns_qname else [])  # type: ignore[attr-defined]
            if not any(self._dns_name(q.lower().rstrip(".")) for q in names):
                return False
        return self.failed is None or bool(d.errno or (d.ret < 0 and d.ret != -115)) == self.failed  # type: ignore[attr-defined]

    def _dns_name(self, q: str) -> bool:
        if not q:
            return False
        if self.dns is not None and not self.dns.test(q):
            return False
        if self.name_min and len(q) < self.name_min:
            return False
        return not (self.label_min and max(len(x) for x in q.split(".")) < self.label_min)


class CProcOp:
    __slots__ = ("ops",)

    def __init__(self, c: S.ProcOpCond) -> None:
        self.ops = frozenset(c.op) if c.op else None

    def match(self, d: object) -> bool:
        return self.ops is None or d.op in self.ops  # type: ignore[attr-defined]


class FlowCtx:
    """A data flow found by detect/flow.py: its consumer's and producer's exec contexts."""

    __slots__ = ("flow", "into", "source")

    def __init__(self, flow: Flow, home: str) -> None:
        self.flow = flow
        self.into = ExecCtx.of(flow.consumer, home)
        self.source = ExecCtx.of(flow.producer, home) if flow.producer is not None else None


class CFlow:
    __slots__ = ("into", "source", "via")

    def __init__(self, c: S.FlowCond, home: str, ws: str, mem: int = MAX_MEM, *, is_except: bool = False) -> None:
        self.via = frozenset(c.via) if c.via else None
        self.into = CExec(c.into, home, ws, mem, is_except=is_except) if c.into is not None else None
        self.source = CExec(c.source, home, ws, mem, is_except=is_except) if c.source is not None else None

    def match(self, ctx: FlowCtx) -> bool:
        if self.via is not None and ctx.flow.via not in self.via:
            return False
        if self.into is not None and not self.into.match(ctx.into):
            return False
        return self.source is None or (ctx.source is not None and self.source.match(ctx.source))


class CLineage:
    __slots__ = ("cmdline", "is_except", "program")

    def __init__(self, c: S.ProcCond, home: str, ws: str, mem: int = MAX_MEM, *, is_except: bool = False) -> None:
        self.program = ProgramMatcher(c.program, home, ws, mem) if c.program else None
        self.cmdline = Regex(c.cmdline, max_mem=mem) if c.cmdline else None
        self.is_except = is_except  # exceptions trust kernel names of trusted images only

    def match(self, p: ProcInfo) -> bool:
        if self.is_except:
            if self.program is not None and not (p.trusted and self.program.trusted(p.exe, p.script)):
                return False
            text = " ".join([p.exe, *p.argv[1:]])
        else:
            if self.program is not None and not self.program(p.exe, p.argv[0] if p.argv else ""):
                return False
            text = " ".join(p.argv)
        # the same cap as an exec's cmdline: bounded work per ancestor, whatever the tree holds
        return self.cmdline is None or self.cmdline.test(text[:MAX_MATCH_TEXT])


class CWhen:
    """A compiled `when`/step/except: a type condition plus lineage conditions."""

    __slots__ = ("ancestor", "cond", "has_lineage", "parent", "process", "src", "type", "writer")

    def __init__(self, w: S.When, home: str, ws: str, mem: int = MAX_MEM, *, is_except: bool = False) -> None:
        self.src = w
        self.type = when_type(w)
        self.cond: CExec | CFile | CNet | CProcOp | CFlow | None = None
        if w.exec is not None:
            self.cond = CExec(w.exec, home, ws, mem, is_except=is_except)
        elif w.flow is not None:
            self.cond = CFlow(w.flow, home, ws, mem, is_except=is_except)
        elif w.file is not None:
            self.cond = CFile(w.file, home, ws, mem, all_names=is_except)
        elif w.net is not None:
            self.cond = CNet(w.net, mem)
        elif w.proc is not None:
            self.cond = CProcOp(w.proc)
        self.process = CLineage(w.process, home, ws, mem, is_except=is_except) if w.process else None
        self.parent = CLineage(w.parent, home, ws, mem, is_except=is_except) if w.parent else None
        self.ancestor = CLineage(w.ancestor, home, ws, mem, is_except=is_except) if w.ancestor else None
        self.writer = CLineage(w.writer, home, ws, mem, is_except=is_except) if w.writer else None
        self.has_lineage = not (
            self.process is None and self.parent is None and self.ancestor is None and self.writer is None
        )

    def match(self, ctx: object, pid: int, tree: ProcessTree, writer: ProcInfo | None = None) -> bool:
        if self.cond is not None and not self.cond.match(ctx):  # type: ignore[arg-type]
            return False
        return not self.has_lineage or self.lineage_ok(pid, tree, writer)

    def lineage_ok(self, pid: int, tree: ProcessTree, writer: ProcInfo | None = None) -> bool:
        """The process/parent/ancestor (and writer) conditions hold for pid."""
        if self.writer is not None and not (writer is not None and self.writer.match(writer)):
            return False
        if self.process is None and self.parent is None and self.ancestor is None:
            return True
        chain = tree.ancestors(pid)
        if self.process is not None and not (chain and self.process.match(chain[0])):
            return False
        if self.parent is not None and not (len(chain) > 1 and self.parent.match(chain[1])):
            return False
        return self.ancestor is None or any(self.ancestor.match(p) for p in chain[1:])


class CRule:
    """A rule bound to a run: compiled conditions plus what a detection carries."""

    __slots__ = ("excepts", "id", "rule", "sequence", "severity", "source", "steps", "template", "whens")

    def __init__(self, rule: S.Rule, source: str, home: str, ws: str, mem: int = MAX_MEM) -> None:
        # mem: RE2 memory per pattern; per-run (untrusted) rules get MAX_MEM_UNTRUSTED
        self.rule = rule
        self.id = rule.id
        self.severity = rule.severity
        self.source = source
        # whens: (condition, step index); plain rules use step -1 for every alternative
        self.steps: list[tuple[CWhen, int]] = []
        if rule.sequence is not None:
            for i, step in enumerate(rule.sequence.steps):
                self.steps += [(CWhen(w, home, ws, mem), i) for w in step_alternatives(step)]
            self.whens = [w for w, _ in self.steps]
        else:
            ws_list = rule.when if isinstance(rule.when, list) else [rule.when] if rule.when else []
            self.whens = [CWhen(w, home, ws, mem) for w in ws_list]
            self.steps = [(w, -1) for w in self.whens]
        self.sequence = rule.sequence
        self.excepts = [CWhen(w, home, ws, mem, is_except=True) for w in rule.except_]
        self.template = Template(rule.message, _all_fields())


def _all_fields() -> set[str]:
    from logira.detect.template import FIELDS

    return set().union(*FIELDS.values())
