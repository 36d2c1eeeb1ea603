"""Agent-aware runs: hook messages, transcripts, the join of tool calls to the kernel record.

Layout (docs/agents.md; the daemon side of hooks is logira/daemon/hookpeer.py):
- `hookmsg.py`   hook JSON (as the agent wrote it) -> AgentData, bounded and never raising;
- `hookconfig.py` merging `logira hook` into Claude/Codex/Gemini settings (pure);
- `codex_trust.py` Codex's key and hash of a hook, and its trust entry in config.toml (pure);
- `transcript.py` Claude/Codex session logs read by root (safe opens, bounded, errors counted);
- `runtime.py`   the agent's own bookkeeping paths and its loud configuration files;
- `join.py`      tool calls <-> processes/files/destinations (pure, linear);
- `finalize.py`  the daemon side at run end: read the run, join, append the results;
- `calls.py`     the read side: a run's tool calls and per-record attribution.
"""
