"""bicep_eval.py evaluates what infra/main.bicep writes as app settings; these check it
evaluates what ARM would (so the Rust test that starts the handler with those settings,
tests/deployed_settings.rs, starts it with the right ones) and refuses what it does not know."""

from __future__ import annotations

import pytest

from bicep_eval import MAIN_BICEP, MAIN_BICEPPARAM, REPO, EvalError, Template, app_settings, bicepparam_arguments


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


def template(environment: dict[str, str]) -> Template:
    return Template(MAIN_BICEP.read_bytes()).bind(bicepparam_arguments(MAIN_BICEPPARAM, environment))


def test_a_timer_that_stops_is_noticed():
    deployed = template({"DIGEST_TO": "a@contoso.com"})
    digest = deployed.resource("digestStoppedAlert")["properties"]
    criterion = digest["criteria"]["allOf"][0]
    # Absence: fewer than one successful LeadDigest in two hourly intervals.
    assert "LeadDigest" in criterion["query"] and "success == true" in criterion["query"]
    assert (criterion["operator"], criterion["threshold"], digest["windowSize"]) == ("LessThan", 1, "PT2H")
    # No destination: LeadDeliver is off, and so is its alert.
    assert deployed.resource("deliverStoppedAlert") is None
    on = template({"DIGEST_TO": "a@contoso.com", "TEAMS_WEBHOOK_URL": "https://x.example/w"})
    deliver = on.resource("deliverStoppedAlert")["properties"]
    assert deliver["windowSize"] == "PT10M"
    assert "LeadDeliver" in deliver["criteria"]["allOf"][0]["query"]
    daily = Template((MAIN_BICEP).read_bytes()).bind({"digestTo": "a@contoso.com", "digestIntervalHours": 24})
    assert daily.resource("digestStoppedAlert")["properties"]["windowSize"] == "PT48H"


def test_the_health_url_is_tested_from_outside_and_needs_no_key():
    import json

    deployed = template({"DIGEST_TO": "a@contoso.com"})
    test = deployed.resource("healthTest")
    assert test["kind"] == "standard" and test["properties"]["Frequency"] == 300
    assert test["properties"]["Request"]["RequestUrl"].endswith("/api/Health")
    assert len(test["properties"]["Locations"]) >= 3
    alert = deployed.resource("healthAlert")["properties"]["criteria"]
    assert alert["failedLocationCount"] == 2
    bindings = json.loads((REPO / "Health" / "function.json").read_text())["bindings"]
    assert bindings[0]["authLevel"] == "anonymous" and bindings[0]["methods"] == ["get"]


def test_the_operator_gets_the_table_role_only_when_named():
    assert template({"DIGEST_TO": "a@contoso.com"}).resource("operatorTableContributor") is None
    role = template({"DIGEST_TO": "a@contoso.com", "OPERATOR_OBJECT_ID": "11111111-2222-3333-4444-555555555555"}).resource(
        "operatorTableContributor"
    )
    assert role["properties"]["principalType"] == "User"
    assert role["properties"]["roleDefinitionId"].endswith("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3")
