"""A scripted stand-in for an agent CLI, run as the test user inside a real `logira run`.

It does what Claude Code does around a tool call, with real processes: runs its hook command
(`sh -c "<hook>"`, JSON on stdin) before and after, spawns the tool's command as its own child
(`/bin/bash -c …`), or edits a file itself for Write. The scenario is JSON in argv[1].
Steps: hook {payload}, raw {text}, bash {id, command, session?, tool_input?}, write {id, path},
spawn {command} (no hooks: undeclared), transcript {path, lines}, sleep {s}.
"""

import json
import os
import subprocess
import sys
import time

HOOK = os.environ.get("FAKE_HOOK_CMD", "true")


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def hook(payload, raw=None):
    data = raw.encode() if raw is not None else json.dumps(payload).encode()
    subprocess.run(["/bin/sh", "-c", HOOK], input=data, stdout=subprocess.DEVNULL, check=False)


def main():
    steps = json.loads(sys.argv[1])
    for st in steps:
        do = st["do"]
        sess = st.get("session", "sess-1")
        base = {"session_id": sess, "transcript_path": st.get("transcript_path", ""), "cwd": os.getcwd()}
        if do == "hook":
            hook({**base, **st["payload"]})
        elif do == "raw":
            hook(None, raw=st["text"] if "text" in st else "x" * st["size"])
        elif do == "bash":
            ti = st.get("tool_input", {"command": st["command"], "description": "test"})
            hook({**base, "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": st["id"], "tool_input": ti})
            r = subprocess.run(["/bin/bash", "-c", st.get("actual", st["command"])], capture_output=True, check=False)
            if not st.get("no_post"):
                hook({**base, "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": st["id"],
                      "tool_input": ti, "tool_response": {"stdout": r.stdout.decode(), "exit_code": r.returncode}})
        elif do == "write":
            ti = {"file_path": st["path"], "content": "x"}
            hook({**base, "hook_event_name": "PreToolUse", "tool_name": "Write", "tool_use_id": st["id"], "tool_input": ti})
            with open(st["path"], "w") as f:
                f.write("written by the agent itself\n")
            hook({**base, "hook_event_name": "PostToolUse", "tool_name": "Write", "tool_use_id": st["id"], "tool_input": ti})
        elif do == "spawn":
            subprocess.run(["/bin/bash", "-c", st["command"]], check=False)
        elif do == "transcript":
            os.makedirs(os.path.dirname(st["path"]), exist_ok=True)
            with open(st["path"], "a") as f:
                for line in st["lines"]:
                    f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        elif do == "transcript_tool":
            # what Claude writes to its session log around a Bash call, without any hook
            def line(obj, path=st["path"], sess=sess):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "a") as f:
                    f.write(json.dumps({**obj, "sessionId": sess, "timestamp": now()}) + "\n")

            line({"type": "assistant", "message": {"content": [
                {"type": "tool_use", "id": st["id"], "name": "Bash", "input": {"command": st["command"]}}]}})
            subprocess.run(["/bin/bash", "-c", st["command"]], check=False)
            line({"type": "user", "message": {"content": [
                {"type": "tool_result", "tool_use_id": st["id"], "content": "", "is_error": False}]}})
        elif do == "symlink":
            os.makedirs(os.path.dirname(st["path"]), exist_ok=True)
            os.symlink(st["target"], st["path"])
        elif do == "sleep":
            time.sleep(st["s"])


if __name__ == "__main__":
    main()
