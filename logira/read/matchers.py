"""The filter pieces of a query: --path globs, --dest destinations, --severity and --type values."""

from __future__ import annotations

import ipaddress
import re

from logira.errors import LogiraError
from logira.format.glob import char_class
from logira.model.record import RECORD_TYPES, SEVERITIES
from logira.read.row import Row

SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class PathGlob:
    """A path glob: `**` crosses directories, `*`/`?` do not; no `/` = match the basename."""

    def __init__(self, pattern: str):
        if not pattern:
            raise LogiraError("empty --path pattern", exit_code=2)
        self.pattern = pattern
        self.basename_only = "/" not in pattern
        self.regex = re.compile(_glob_regex(pattern), re.DOTALL)
        sql = pattern.replace("**", "*").replace("[!", "[^")
        self.sql = ("*/" + sql) if self.basename_only else sql

    def match(self, path: str | None) -> bool:
        if not path:
            return False
        if self.basename_only:
            path = path.rsplit("/", 1)[-1]
        return self.regex.fullmatch(path) is not None


def _glob_regex(pat: str) -> str:
    out, i, n = [], 0, len(pat)
    while i < n:
        c = pat[i]
        if pat.startswith("**", i):
            at_dir_start = i == 0 or pat[i - 1] == "/"
            if at_dir_start and pat.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (cls := char_class(pat, i)) is not None:
            out.append(cls[0])
            i = cls[1]
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


class Dest:
    """--dest: `ip`, `ip:port`, `[v6]:port`, `:port`, `CIDR`, `host`, `host:port`."""

    def __init__(self, text: str):
        self.text = text
        self.ip: str | None = None
        self.net: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        self.host: str | None = None
        self.port: int | None = None
        t = text.strip()
        bad = LogiraError(
            f"invalid --dest {text!r} (expected ip, ip:port, [v6]:port, :port, CIDR like 10.0.0.0/8, or a host name)",
            exit_code=2,
        )
        if not t:
            raise bad
        hostpart = t
        if t.startswith("["):
            end = t.find("]")
            if end < 0:
                raise bad
            hostpart, rest = t[1:end], t[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise bad
                self.port = _port(rest[1:], bad)
        elif t.count(":") == 1:
            hostpart, port = t.split(":")
            self.port = _port(port, bad)
        if "/" in hostpart:
            try:
                self.net = ipaddress.ip_network(hostpart, strict=False)
            except ValueError:
                raise bad from None
            return
        if not hostpart:
            if self.port is None:
                raise bad
            return
        try:
            self.ip = str(ipaddress.ip_address(hostpart))
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", hostpart):
                raise bad from None
            self.host = hostpart.lower().rstrip(".")

    @property
    def exact_in_sql(self) -> bool:
        return self.net is None

    def match(self, row: Row) -> bool:
        if row.type != "net":
            return False
        if self.port is not None and row.dst_port != self.port:
            return False
        if self.ip is not None:
            return row.dst_ip is not None and _norm_ip(row.dst_ip) == self.ip
        if self.net is not None:
            try:
                return row.dst_ip is not None and ipaddress.ip_address(row.dst_ip) in self.net
            except ValueError:
                return False
        if self.host is not None:
            d = (row.dns or "").lower().rstrip(".")
            return d == self.host or d.endswith("." + self.host)
        return True


def _cidr_glob(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """An index-friendly GLOB superset of a network's addresses (exactness is checked in Python)."""
    if net.version == 4:
        fixed = net.prefixlen // 8
        return ".".join(str(net.network_address).split(".")[:fixed]) + ("." if fixed else "") + "*"
    return "*"


def _norm_ip(s: str) -> str:
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        return s


def _port(s: str, bad: LogiraError) -> int:
    if not s.isdigit() or not 0 <= int(s) <= 65535:
        raise bad
    return int(s)


def parse_severity(text: str) -> tuple[str, ...]:
    """`high`, `>=medium`, `high,critical` → the allowed severities (validated)."""
    t = text.strip().lower()
    names = " | ".join(SEVERITIES)
    if t.startswith(">="):
        base = t[2:].strip()
        if base not in SEV_RANK:
            raise LogiraError(f"invalid --severity {text!r} (expected {names}, a list, or >=LEVEL)", exit_code=2)
        return tuple(s for s in SEVERITIES if SEV_RANK[s] >= SEV_RANK[base])
    out = tuple(p.strip() for p in t.split(","))
    for p in out:
        if p not in SEV_RANK:
            raise LogiraError(f"invalid --severity {text!r} (expected {names}, a list, or >=LEVEL)", exit_code=2)
    return out


def parse_types(text: str) -> tuple[str, ...]:
    """`--type exec,file` / `all` → the record types (validated)."""
    t = text.strip().lower()
    if t == "all":
        return ()
    out = tuple(p.strip() for p in t.split(","))
    for p in out:
        if p not in RECORD_TYPES:
            raise LogiraError(
                f"invalid --type {text!r} (expected {'|'.join(RECORD_TYPES)}|all, or a list)", exit_code=2
            )
    return out
