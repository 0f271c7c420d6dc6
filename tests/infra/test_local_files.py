"""Local data never leaves the machine: Azurite's files, wherever Azurite
was started (scripts/run-local keeps them in .azurite/; `npx azurite-table`
in the root writes them there), are ignored by git and not uploaded by
`func azure functionapp publish` (.funcignore)."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AZURITE_FILES = [
    "__azurite_db_table__.json",
    "__azurite_db_table_extent__.json",
    "__azurite_db_blob__.json",
    "__blobstorage__/x",
    "__queuestorage__/x",
    "AzuriteConfig",
    ".azurite/__azurite_db_table__.json",
    "local.settings.json",
]


def funcignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, p) or any(fnmatch.fnmatch(part, p) for part in parts)
        for p in patterns
    )


def test_azurites_files_are_not_published():
    assert [f for f in AZURITE_FILES if not funcignored(f)] == []
    assert not funcignored("handler") and not funcignored("host.json")
    assert not funcignored("LeadIngest/function.json")


def test_azurites_files_are_not_committed():
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *AZURITE_FILES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    ignored = set(result.stdout.split())
    assert [f for f in AZURITE_FILES if f not in ignored] == []
