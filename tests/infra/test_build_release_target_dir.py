"""scripts/build-release finds the binary where cargo put it, whatever CARGO_TARGET_DIR says.

Fast: `cargo` and `rustup` are replaced on PATH by stubs that answer `cargo metadata`
with the target directory from CARGO_TARGET_DIR (as cargo does) and "build" a stand-in
binary there, so only the script's own logic runs. (The real optimised build is
test_release.py's, behind RUN_RELEASE_BUILD.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CARGO_STUB = r"""#!/usr/bin/env python3
import json, os, sys
target_dir = os.environ["CARGO_TARGET_DIR"]
args = sys.argv[1:]
if args[:1] == ["metadata"]:
    print(json.dumps({"target_directory": target_dir, "packages": [], "workspace_members": []}))
elif args[:1] in (["build"], ["zigbuild"]):
    target = args[args.index("--target") + 1].split(".")[0]
    out = os.path.join(target_dir, target, "release")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "handler"), "w") as f:
        f.write("#!/bin/sh\necho stand-in handler\n")
else:
    sys.exit(f"cargo stub: unexpected {args}")
"""

RUSTUP_STUB = """#!/bin/sh
echo x86_64-unknown-linux-musl
"""


def test_a_custom_cargo_target_dir_is_honoured(tmp_path: Path):
    work = tmp_path / "repo"
    (work / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "build-release", work / "scripts" / "build-release")
    (work / "requirements-dev.txt").write_text("ziglang==0\ncargo-zigbuild==0\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("cargo", CARGO_STUB), ("rustup", RUSTUP_STUB)):
        stub = bin_dir / name
        stub.write_text(body)
        stub.chmod(0o755)
    shared_target = tmp_path / "shared-target"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", CARGO_TARGET_DIR=str(shared_target))

    run = subprocess.run(
        ["scripts/build-release"], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert (work / "handler").read_text() == "#!/bin/sh\necho stand-in handler\n"
    assert str(shared_target) in run.stdout, run.stdout
