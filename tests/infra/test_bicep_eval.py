"""bicep_eval.py evaluates what infra/main.bicep writes as app settings; these check it
evaluates what ARM would (so the Rust test that starts the handler with those settings,
tests/deployed_settings.rs, starts it with the right ones) and refuses what it does not know."""

from __future__ import annotations

import pytest

from bicep_eval import EvalError, Template, app_settings


def settings(environment: dict[str, str], overrides: dict | None = None) -> dict[str, str]:
    return dict(app_settings(environment, overrides))


def test_defaults_write_blank_destinations_and_no_refinements():
    written = settings({"DIGEST_TO": "a@contoso.com; b@contoso.com,"})
    assert written["DIGEST_TO"] == "a@contoso.com;b@contoso.com"
    assert written["DIGEST_FROM"].startswith("DoNotReply@") and written["DIGEST_FROM"].endswith(".azurecomm.net")
    assert written["ACS_ENDPOINT"].startswith("https://")
    for switch in ["NOTIFY_TO", "TEAMS_WEBHOOK_URL", "WEBHOOK_URL", "DATAVERSE_URL", "HUBSPOT_TOKEN", "SALESFORCE_URL", "MARKETO_URL"]:
        assert written[switch] == "", switch
    # What only refines a destination is written only with it.
    assert written["NOTIFY_MAX_PER_HOUR"] == ""
    assert written["SALESFORCE_EXTERNAL_ID_FIELD"] == ""
    # ARM's string() of a bool.
    assert written["CRM_INCLUDE_DNC"] == "False"
    assert written["AzureWebJobs.LeadDeliver.Disabled"] == "True"


def test_a_destination_parameter_switches_it_and_the_sweep_on():
    written = settings({"DIGEST_TO": "a@contoso.com", "NOTIFY_TO": "sales@contoso.com"})
    assert written["NOTIFY_TO"] == "sales@contoso.com"
    assert written["NOTIFY_MAX_PER_HOUR"] == "10"
    assert written["AzureWebJobs.LeadDeliver.Disabled"] == "False"
    written = settings({"DIGEST_TO": "a@contoso.com", "SALESFORCE_URL": "https://x.my.salesforce.com"})
    assert written["SALESFORCE_EXTERNAL_ID_FIELD"] == "MarketplaceLeadId__c"
    assert written["SALESFORCE_COUNTRY_PICKLISTS"] == "False"


def test_destination_settings_pass_only_destination_and_route_names():
    written = app_settings(
        {"DIGEST_TO": "a@contoso.com"},
        {"destinationSettings": {"TEAMS_WEBHOOK_URL__sales": "https://x", "TEAMS_OFFERS": "a", "DIGEST_TO": "evil@x.com"}},
    )
    names = [name for name, _ in written]
    assert names.count("DIGEST_TO") == 1 and dict(written)["DIGEST_TO"] == "a@contoso.com"
    assert names[-2:] == ["TEAMS_OFFERS", "TEAMS_WEBHOOK_URL__sales"]


def test_the_required_recipients_must_be_given():
    with pytest.raises(EvalError, match="DIGEST_TO"):
        app_settings({})


def test_what_it_cannot_evaluate_is_an_error_not_a_guess():
    template = Template(b"param p string = 'x'\nvar v = someFunction(p)\n").bind({})
    with pytest.raises(EvalError, match="someFunction"):
        template.variable("v")
    template = Template(
        b"resource r 'Microsoft.Web/sites@2025-03-01' = {\n  name: 'a'\n}\nvar v = r.properties.unknownThing\n"
    ).bind({})
    with pytest.raises(EvalError, match="RESOURCE_OUTPUTS"):
        template.variable("v")
