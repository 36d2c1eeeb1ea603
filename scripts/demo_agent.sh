#!/bin/sh
# A stand-in for an AI coding agent, run by `make demo` under `logira run`.
# It does what agents do (edit files in its workspace, run tools, fetch from the network)
# plus two things the default rules flag: a curl|sh installer that drops and runs an
# executable under /tmp, and a line appended to ~/.bashrc (persistence).
# Usage: demo_agent.sh <http-port>   (cwd = the agent's workspace)
set -eu
port="${1:?usage: demo_agent.sh <http-port>}"

echo "agent: planning the change"
mkdir -p src
cat > src/app.py <<'PY'
def greet(name):
    return "hello " + name
PY
printf '# demo project\n' > README.md
sed -i 's/hello /hello, /' src/app.py
python3 -c 'import ast,sys; ast.parse(open("src/app.py").read())' && echo "agent: src/app.py parses"
mv README.md NOTES.md
rm -f NOTES.md.bak

echo "agent: fetching docs from the local server"
curl -fsS "http://127.0.0.1:${port}/docs.txt" -o docs.txt

echo "agent: running the project's 'installer' (curl | sh)"
sh -c "curl -fsS http://127.0.0.1:${port}/install.sh | sh"

echo "agent: 'improving' the shell config"
echo 'alias ll="ls -l"  # added by demo agent' >> "$HOME/.bashrc"

echo "agent: done"
