"""The rulesets runs are judged by: the default set (built-ins + site dir, loaded once) and a
run's own rules file (parsed off the event loop, one at a time)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from logira.daemon import protocol as p
from logira.detect.loader import RuleSet, load_rules
from logira.errors import LogiraError


class RulesRefused(LogiraError):
    """The rules cannot be loaded: one line naming file:line, sent to the client."""


class RuleCache:
    def __init__(self, site_rules_dir: str) -> None:
        self.site_rules_dir = Path(site_rules_dir)
        self._default: RuleSet | None = None
        self._lock = asyncio.Lock()

    def _site(self) -> Path | None:
        return self.site_rules_dir if self.site_rules_dir.is_dir() else None

    def default(self) -> RuleSet:
        try:
            if self._default is None:
                self._default = load_rules(builtin=True, site_dir=self._site())
            return self._default
        except Exception as exc:  # RuleError: one line naming file:line
            raise RulesRefused(f"rules: {exc}") from None

    def _custom(self, msg: p.StartRun) -> RuleSet:
        try:
            return load_rules(builtin=True, site_dir=self._site(), extra=[(msg.rules_path or "rules", msg.rules_yaml)])
        except Exception as exc:
            raise RulesRefused(f"rules: {exc}") from None

    async def for_run(self, msg: p.StartRun) -> RuleSet:
        """The ruleset of a new run. A user's rules file is parsed off the event loop, one at a
        time: up to 256 KiB of YAML takes ~0.6 s, which on the loop would stall the ring reader
        for every other run."""
        if not msg.rules_yaml:
            return self.default()
        async with self._lock:
            return await asyncio.to_thread(self._custom, msg)

    def problem(self) -> str:
        """Why the default ruleset cannot be loaded ("" when it can), for `status`."""
        try:
            self.default()
        except RulesRefused as exc:
            return str(exc)
        return ""
