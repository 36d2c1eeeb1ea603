#!/bin/sh
# A stand-in for an AI coding agent, run by `make demo` under `logira run`.
# It does what agents do (edit files in its workspace, run tools, fetch from the network)
# plus two things the default rules flag: a curl|sh installer that drops and runs an
# executable under /tmp, and a line appended to ~/.bashrc (persistence).
# Like Claude Code with `logira agent hooks install claude`, it announces each step as a tool call
# (PreToolUse / PostToolUse JSON on the stdin of the hook command in $LOGIRA_HOOK_CMD), so `view`
# and `explain` name the tool call behind every process, file and detection.
# Usage: demo_agent.sh <http-port>   (cwd = the agent's workspace)
set -eu
port="${1:?usage: demo_agent.sh <http-port>}"
session="demo-session-0001"
hook="${LOGIRA_HOOK_CMD:-}"

announce() {  # announce <event> [<call id> <command>]: one hook message (no-op without a hook command)
  [ -n "$hook" ] || return 0
  if [ "$#" -eq 1 ]; then
    printf '{"hook_event_name":"%s","session_id":"%s","cwd":"%s"}' "$1" "$session" "$PWD" | $hook
  else
    printf '{"hook_event_name":"%s","session_id":"%s","cwd":"%s","tool_use_id":"%s","tool_name":"Bash","tool_input":{"command":"%s"}}' \
      "$1" "$session" "$PWD" "$2" "$3" | $hook
  fi
}

tool() {  # tool <call id> <description> <command>: the command must hold no double quote or backslash
  echo "agent: $2"
  announce PreToolUse "$1" "$3"
  sh -c "$3"
  announce PostToolUse "$1" "$3"
}

announce SessionStart
tool toolu_demo_01 "writing src/app.py" "mkdir -p src && echo 'def greet(name): return name' > src/app.py"
tool toolu_demo_02 "checking it compiles" "sed -i 's/return name/return name.title()/' src/app.py && python3 -m py_compile src/app.py"
tool toolu_demo_03 "fetching docs from the local server" "curl -fsS http://127.0.0.1:${port}/docs.txt -o docs.txt"
tool toolu_demo_04 "running the project's 'installer' (curl | sh)" "curl -fsS http://127.0.0.1:${port}/install.sh | sh"
tool toolu_demo_05 "'improving' the shell config" "echo 'alias ll=ls'  >> ~/.bashrc"
announce Stop
echo "agent: done"
