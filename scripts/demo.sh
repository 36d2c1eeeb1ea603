#!/usr/bin/env bash
# `make demo`: record an agent-like script with logira and show what it did.
#
# What it does (as root, rerunnable; everything lives under $LOGIRA_DEMO_DIR, default
# /tmp/logira-demo, which is wiped at the start and kept afterwards for exploring):
#   1. starts its OWN logirad in the background on a private socket, state dir and cgroup
#      parent (so it never touches a system logirad on /run/logira.sock), stopped on exit;
#   2. starts a local HTTP server on 127.0.0.1 (the "internet" of the demo);
#   3. runs scripts/demo_agent.sh under `logira run --tool demo-agent` as the throwaway user
#      `logira-demo` (created if missing, removed again on exit if this script created it;
#      as root if that user cannot reach the repository);
#   4. shows `logira view last`, `logira explain last` and `logira verify last`.
#      The demo agent announces its steps as tool calls through the real hook client (the command
#      `logira agent hooks install` writes), so both name the tool call behind each effect.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
DEMO="${LOGIRA_DEMO_DIR:-/tmp/logira-demo}"
DEMO_USER=logira-demo
CG_PARENT="logira-demo"

die() { echo "demo: error: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (the daemon loads BPF): sudo make demo"
[ -x "$PY" ] || die "no virtualenv at $REPO/.venv; run make setup first"
case "$DEMO" in /tmp/*|/var/tmp/*) ;; *) die "LOGIRA_DEMO_DIR must be under /tmp or /var/tmp (it is wiped)";; esac

DAEMON_PID="" HTTP_PID="" CREATED_USER=""
cleanup() {
  set +e
  [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null && wait "$HTTP_PID" 2>/dev/null
  if [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  [ -n "$CREATED_USER" ] && userdel --remove "$DEMO_USER" >/dev/null 2>&1
  # the daemon removes its run cgroups; the (empty) parent is ours to remove
  cg2="$("$PY" -c 'from logira.cgroup2 import find_cgroup2_mount as f; print(f())' 2>/dev/null)"
  [ -n "$cg2" ] && rmdir "$cg2/$CG_PARENT" 2>/dev/null
  true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf -- "$DEMO"
mkdir -p "$DEMO/state" "$DEMO/www"
chmod 0755 "$DEMO"

# --- who plays the agent ------------------------------------------------------------------
if ! id -u "$DEMO_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/sh "$DEMO_USER"
  CREATED_USER=1
fi
AS=(setpriv "--reuid=$(id -u "$DEMO_USER")" "--regid=$(id -g "$DEMO_USER")" --init-groups --)
AGENT_HOME="$(getent passwd "$DEMO_USER" | cut -d: -f6)"
AGENT_NAME="$DEMO_USER"
if ! "${AS[@]}" test -x "$PY" -a -r "$REPO/scripts/demo_agent.sh" 2>/dev/null; then
  echo "demo: $DEMO_USER cannot reach $REPO; running the agent as root instead"
  AS=() AGENT_HOME="$HOME" AGENT_NAME=root
fi
OWNER="$(id -u "$AGENT_NAME"):$(id -g "$AGENT_NAME")"
mkdir -m 0700 "$DEMO/home" "$DEMO/workspace"
chown "$OWNER" "$DEMO/home" "$DEMO/workspace"

# --- the local "internet" -----------------------------------------------------------------
printf 'How to build: run make.\n' > "$DEMO/www/docs.txt"
cat > "$DEMO/www/install.sh" <<'SH'
# a typical "curl | sh" installer: drops a binary under /tmp and runs it
d="$(mktemp -d /tmp/logira-demo-payload.XXXXXX)"
printf '#!/bin/sh\necho "payload: running from $0"\n' > "$d/helper"
chmod +x "$d/helper"
"$d/helper"
rm -rf "$d"
SH
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$DEMO/www" "$PORT" >"$DEMO/http.log" 2>&1 &
HTTP_PID=$!

# --- the daemon -----------------------------------------------------------------------------
SOCK="$DEMO/logirad.sock"
"$REPO/.venv/bin/logirad" --sock "$SOCK" --state-dir "$DEMO/state" --cgroup-parent "$CG_PARENT" \
  --log-format console --journald off >"$DEMO/logirad.log" 2>&1 &
DAEMON_PID=$!
export LOGIRA_SOCK="$SOCK" LOGIRA_STATE_DIR="$DEMO/state"
echo "demo: starting logirad (pid $DAEMON_PID, socket $SOCK, log $DEMO/logirad.log)"
for _ in $(seq 100); do
  kill -0 "$DAEMON_PID" 2>/dev/null || { tail -n 5 "$DEMO/logirad.log" >&2; die "logirad exited during startup"; }
  "$PY" -m logira.cli.main status >/dev/null 2>&1 && break
  sleep 0.2
done
"$PY" -m logira.cli.main status || die "logirad is not ready (see above)"
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/docs.txt" 2>/dev/null && break; sleep 0.1; done

# --- the run ----------------------------------------------------------------------------------
logira_as_agent() {
  (cd "$DEMO/workspace" && "${AS[@]}" env -i HOME="$AGENT_HOME" USER="$AGENT_NAME" LOGNAME="$AGENT_NAME" \
     PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TERM="${TERM:-dumb}" \
     LOGIRA_SOCK="$SOCK" LOGIRA_HOME="$DEMO/home" LOGIRA_STATE_DIR="$DEMO/state" \
     LOGIRA_HOOK_CMD="$PY -I -S $REPO/logira/client/hook.py --agent claude" \
     "$PY" -m logira.cli.main "$@")
}
echo
echo "demo: \$ logira run --tool demo-agent -- sh scripts/demo_agent.sh $PORT   (as $AGENT_NAME)"
rc=0
logira_as_agent run --tool demo-agent -- sh "$REPO/scripts/demo_agent.sh" "$PORT" || rc=$?
echo "demo: the agent exited with status $rc"

echo
echo "demo: \$ logira view last"
logira_as_agent view last || true
echo
echo "demo: \$ logira explain last"
logira_as_agent explain last || true
echo
echo "demo: \$ logira verify last"
logira_as_agent verify last || true
echo
echo "demo: the run is kept under $DEMO/home/runs/ - explore it with:"
echo "  LOGIRA_HOME=$DEMO/home logira query last --type file"
