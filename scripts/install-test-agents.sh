#!/usr/bin/env bash
# Installs the REAL agent CLIs that tests/agents drives offline, at pinned versions, into a project-local
# npm prefix (build/agents, ignored by git). Idempotent: once the stamp matches the pinned list, it does
# nothing and needs no network. Files are made world-readable (a+rX) because the tests run the CLIs as a
# throwaway unprivileged user.
# If npm cannot install them, it warns and the real-agent tests skip, except under CI=true, where it fails:
# CI must not go green without them (the same rule as LOGIRA_REQUIRE_BPF for BPF).
# usage: install-test-agents.sh DEST PKG@VERSION...
set -uo pipefail
dest=$1; shift
pkgs="$*"
stamp="$dest/.installed"
bins=(claude codex gemini)  # gemini is a Node program: it needs node >= 20

give_up() {
  if [ "${CI:-}" = "true" ]; then echo "error: $1" >&2; exit 1; fi
  echo "warning: $1; the real-agent tests (tests/agents) will skip" >&2
  exit 0
}

all_run() { for b in "${bins[@]}"; do "$dest/node_modules/.bin/$b" --version >/dev/null 2>&1 || return 1; done; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkgs" ] && all_run; then exit 0; fi

if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: nodejs npm (for the real-agent tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
command -v npm >/dev/null 2>&1 || give_up "npm is missing (install Debian's nodejs and npm)"

mkdir -p "$dest"
deps=""
for p in $pkgs; do deps="$deps\"${p%@*}\": \"${p##*@}\","; done
printf '{"name": "logira-test-agents", "private": true, "dependencies": {%s}}\n' "${deps%,}" > "$dest/package.json"
echo "installing test agents into $dest: $pkgs"
(cd "$dest" && npm install --no-audit --no-fund --loglevel=error --no-update-notifier >/dev/null) \
  || give_up "npm could not install $pkgs"
# Claude Code's postinstall copies its native binary over bin/claude.exe; run it if npm skipped scripts.
if ! "$dest/node_modules/.bin/claude" --version >/dev/null 2>&1 && [ -f "$dest/node_modules/@anthropic-ai/claude-code/install.cjs" ]; then
  (cd "$dest/node_modules/@anthropic-ai/claude-code" && node install.cjs) >/dev/null 2>&1
fi
chmod -R a+rX "$dest"
all_run || give_up "the installed agent CLIs do not run ($dest/node_modules/.bin)"
echo "$pkgs" > "$stamp"
for b in "${bins[@]}"; do echo "  $b: $("$dest/node_modules/.bin/$b" --version 2>&1 | head -1)"; done
