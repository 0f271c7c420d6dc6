"""scripts/app-settings-to-bicepparam keeps what a user added to a deployed app across a
re-deploy: its output, pasted into infra/main.bicepparam, makes the template write those
settings again (secrets from the environment, routes as they were)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from bicep_eval import MAIN_BICEP, MAIN_BICEPPARAM, REPO, Template, bicepparam_arguments

SCRIPT = REPO / "scripts" / "app-settings-to-bicepparam"
DEPLOYED = [
    {"name": "AzureWebJobsStorage__accountName", "value": "stx", "slotSetting": False},
    {"name": "NOTIFY_TO", "value": "sales@contoso.com", "slotSetting": False},
    {"name": "TEAMS_WEBHOOK_URL__sales", "value": "https://prod.example/workflows/x?sig=abc", "slotSetting": False},
    {"name": "TEAMS_OFFERS__sales", "value": "contoso.analytics, Contoso's *", "slotSetting": False},
    {"name": "HUBSPOT_ACTIONS", "value": "INS", "slotSetting": False},
    {"name": "WEBSITE_RUN_FROM_PACKAGE", "value": "1", "slotSetting": False},
    {"name": "MY_OWN_THING", "value": "x", "slotSetting": False},
]


def test_added_settings_survive_a_redeploy(tmp_path):
    listed = tmp_path / "settings.json"
    listed.write_text(json.dumps(DEPLOYED))
    printed = subprocess.run(
        [sys.executable, str(SCRIPT), "--from-file", str(listed)], capture_output=True, text=True, check=True
    ).stdout
    assert "sig=abc" not in printed, "a secret is never printed"
    assert "export TEAMS_WEBHOOK_URL__sales=" in printed
    assert "MY_OWN_THING" in printed

    block = re.search(r"^param destinationSettings = \{.*?^\}", printed, re.MULTILINE | re.DOTALL).group(0)
    params = tmp_path / "main.bicepparam"
    original = MAIN_BICEPPARAM.read_text()
    params.write_text(
        re.sub(r"^param destinationSettings = \{\}$", block, original, flags=re.MULTILINE).replace(
            "using './main.bicep'", f"using '{MAIN_BICEP}'"
        )
    )
    arguments = bicepparam_arguments(
        params, {"DIGEST_TO": "a@contoso.com", "TEAMS_WEBHOOK_URL__sales": "https://prod.example/workflows/x?sig=abc"}
    )
    written = dict(Template(MAIN_BICEP.read_bytes()).bind(arguments).app_settings())
    assert written["TEAMS_WEBHOOK_URL__sales"] == "https://prod.example/workflows/x?sig=abc"
    assert written["TEAMS_OFFERS__sales"] == "contoso.analytics, Contoso's *"
    assert written["HUBSPOT_ACTIONS"] == "INS"
