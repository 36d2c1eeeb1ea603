"""A minimal `logira run` for daemon tests, run AS the test user: python agent_client.py SOCK -- argv...

Creates ~/.logira/runs like the real client, holds the child, starts the run, releases it,
reports agent_exited and prints the daemon's replies as JSON lines on stdout.
"""

from __future__ import annotations

import os
import sys

import msgspec

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from daemon_helpers import Client, HeldChild

from logira.daemon import protocol as p


def main() -> int:
    sock, argv = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    home = os.path.expanduser("~/.logira")
    os.makedirs(os.path.join(home, "runs"), mode=0o700, exist_ok=True)
    child = HeldChild(argv)
    with Client(sock) as c:
        reply = c.request(
            p.StartRun(tool="agent", argv=argv, cwd=os.getcwd(), pid=child.pid, file=False, net=False)
        )
        print(msgspec.json.encode(reply).decode(), flush=True)
        if not isinstance(reply, p.RunStarted):
            child.kill()
            return 1
        child.release()
        rc = child.wait()
        c.send(p.AgentExited(exit_code=max(rc, 0), signal=max(-rc, 0)))
        print(msgspec.json.encode(c.recv(30)).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
