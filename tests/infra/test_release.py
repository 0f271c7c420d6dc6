"""The release build: scripts/build-release stages a ./handler that runs on glibc <= 2.28
(or is static) and answers the Functions host's readiness probe (`GET /`) quickly.

Slow (a full optimised build), so it runs only with RUN_RELEASE_BUILD=1.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HANDLER = REPO / "handler"
GLIBC_MAX = (2, 28)
READY_WITHIN_S = 10.0  # the host gives a handler about 30 s; we want far less
BUILD_TIMEOUT_S = 3600

pytestmark = pytest.mark.skipif(
    os.environ.get("RUN_RELEASE_BUILD") != "1",
    reason="slow full release build; set RUN_RELEASE_BUILD=1 to run it",
)


def glibc_floor(binary: Path) -> tuple[int, ...] | None:
    """Highest GLIBC_x.y symbol version the binary requires; None if it needs none (static)."""
    if shutil.which("objdump"):
        cmd = ["objdump", "-T", str(binary)]
    elif shutil.which("readelf"):
        cmd = ["readelf", "-W", "--dyn-syms", "-V", str(binary)]
    else:
        pytest.fail("neither objdump nor readelf is installed (apt-get install binutils)")
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}
    return max(versions) if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def test_release_binary_builds_and_answers_readiness_probe(capsys):
    build = subprocess.run(
        ["scripts/build-release"], cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    assert build.returncode == 0, f"scripts/build-release failed:\n{tail(build.stdout + build.stderr)}"
    assert HANDLER.is_file() and os.access(HANDLER, os.X_OK), "scripts/build-release staged no executable ./handler"

    floor = glibc_floor(HANDLER)
    assert floor is None or floor <= GLIBC_MAX, (
        f"./handler needs glibc {'.'.join(map(str, floor))}, newer than {'.'.join(map(str, GLIBC_MAX))}"
    )

    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LEADS_STORAGE": "UseDevelopmentStorage=true",
        "SMTP_URL": "smtp://127.0.0.1:1",
        "DIGEST_TO": "a@example.com",
        "DIGEST_FROM": "b@example.com",
    }
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [str(HANDLER), "serve", "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            started = time.monotonic()
            status = None
            while time.monotonic() - started < READY_WITHIN_S and proc.poll() is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                try:
                    conn.request("GET", "/")
                    status = conn.getresponse().status  # any HTTP answer means ready
                    break
                except OSError:
                    time.sleep(0.05)
                finally:
                    conn.close()
            elapsed = time.monotonic() - started
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.seek(0)
        output = log.read()

    assert status is not None, (
        f"./handler serve --port {port} gave no HTTP answer on GET / within {READY_WITHIN_S:.0f} s "
        f"(exit code {proc.returncode}); its output:\n{tail(output)}"
    )
    size_mib = HANDLER.stat().st_size / 1048576
    floor_text = ".".join(map(str, floor)) if floor else "none (static)"
    with capsys.disabled():
        print(
            f"\nrelease ./handler: {size_mib:.2f} MiB, glibc floor {floor_text}, "
            f"GET / -> {status} after {elapsed:.2f} s"
        )
