"""The `logirad` console script: a missing libbpf.so.1 is one line, not an import traceback.

libbpf.so.1 is the one system library an installed wheel needs, and it is loaded (ctypes) when the
probes module is imported, which the daemon's modules do at import time. So the check has to sit in
front of the first import of logira.daemon.main.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from logira.daemon.main import main as daemon_main
    except OSError as exc:  # LibbpfError: libbpf.so.1 not found
        print(f"logirad: error: {getattr(exc, 'what', exc)}", file=sys.stderr)
        sys.exit(1)
    daemon_main()
