"""Static checks of the Bicep under infra/, without the Bicep CLI (not installable here).

1. Every infra/**/*.bicep parses with the tree-sitter-bicep grammar: any ERROR or
   MISSING node fails the test with file:line:column.
   tree-sitter-bicep 1.1.0 does not know the parameters-file form `param NAME = value`
   (it wants a type), so a .bicepparam file is checked by rewriting each such line to
   `var   NAME = value` (same length, so positions stay true) and parsing that, plus
   semantic checks the grammar cannot make: the `using` target exists, every assigned
   parameter is declared there, and every required parameter of the target is assigned.
2. Self-checks: broken snippets are reported (with the right line), so check 1 cannot
   pass by finding nothing.
3. The app settings Bicep sets are exactly the ones the handler reads, as the handler
   itself lists them (`handler settings --list --json`, from its configuration and its
   destination registry): the `deployed` ones must all be set; the optional ones and each
   destination's may be; the only other name allowed is a setting owned by the Functions
   host (HOST_OWNED_SETTINGS).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import tree_sitter

from bicep_ast import (
    named,
    object_properties,
    parse,
    position,
    property_key,
    property_value,
    string_literal,
    walk,
)

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
SRC = REPO / "src"

# Settings the Bicep may set although the handler never reads them: the Functions host
# reads them itself. Keep this list explicit and tiny.
HOST_OWNED_SETTINGS = frozenset(
    {
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        # The host's switch for one function (LeadDeliver runs only with a destination).
        "AzureWebJobs.LeadDeliver.Disabled",
    }
)

# siteConfig properties that Flex Consumption rejects (ARM error 51021) or lists as
# deprecated ("Flex Consumption plan deprecations" in the Functions app settings reference).
FLEX_DEPRECATED_SITE_CONFIG = frozenset(
    {
        "alwaysOn",
        "ftpsState",
        "functionAppScaleLimit",
        "functionsRuntimeScaleMonitoringEnabled",
        "javaVersion",
        "linuxFxVersion",
        "netFrameworkVersion",
        "powerShellVersion",
        "preWarmedInstanceCount",
        "use32BitWorkerProcess",
        "vnetRouteAllEnabled",
        "windowsFxVersion",
    }
)

# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 1-based
    column: int  # 1-based, in characters
    what: str

    def render(self, path: str) -> str:
        return f"{path}:{self.line}:{self.column}: {self.what}"


def syntax_problems(source: bytes) -> list[SyntaxProblem]:
    """The innermost ERROR nodes and all MISSING nodes of the parse of `source`, in source order."""
    lines = source.split(b"\n")
    found: dict[tuple[int, int], SyntaxProblem] = {}

    def has_problem_inside(node: tree_sitter.Node) -> bool:
        return any(c.is_missing or c.type == "ERROR" or has_problem_inside(c) for c in node.children)

    def visit(node: tree_sitter.Node) -> None:
        # An ERROR that wraps other problems (error recovery can swallow the whole file) is
        # reported through the innermost ones, which point at the actual mistake.
        if node.is_missing or (node.type == "ERROR" and not has_problem_inside(node)):
            row, col = node.start_point
            line = lines[row] if row < len(lines) else b""
            column = len(line[:col].decode("utf-8", "replace")) + 1
            if node.is_missing:
                what = f"MISSING {node.type!r}"
            else:
                text = node.text.decode("utf-8", "replace").strip().splitlines()
                what = f"ERROR near {text[0][:60]!r}" if text else "ERROR"
            found.setdefault((row, col), SyntaxProblem(row + 1, column, what))
        for child in node.children:
            visit(child)

    visit(parse(source).root_node)
    return [found[k] for k in sorted(found)]


_PARAM_ASSIGNMENT = re.compile(rb"^(\s*)param(\s+[A-Za-z_][A-Za-z0-9_]*\s*=)", re.MULTILINE)


def bicepparam_as_bicep(source: bytes) -> bytes:
    """`param NAME = value` -> `var   NAME = value`: same length, so line/column survive."""
    return _PARAM_ASSIGNMENT.sub(rb"\1var  \2", source)


def bicep_app_setting_names(source: bytes) -> list[str]:
    """Names of the app settings a Bicep file sets, read from its syntax tree.

    Covers `appSettings: [ { name: '...', value: ... }, ... ]` (siteConfig.appSettings),
    also as `concat([ ... ], <var>)` where <var> is one of DYNAMIC_APP_SETTINGS (the
    user's named destinations and routes, whose names the handler checks at start-up),
    and `Microsoft.Web/sites/config` resources named 'appsettings' (keys of `properties`).
    Anything else that cannot be read statically (a loop, another variable, an
    interpolated name) is an error: the comparison would otherwise be silently incomplete.
    """
    root = parse(source).root_node
    names: list[str] = []
    for node in walk(root):
        if node.type == "object_property" and property_key(node) == "appSettings":
            array = property_value(node)
            if array.type == "call_expression":
                array = _concat_literal(array)
            if array.type != "array":
                raise ValueError(f"{position(array)}: appSettings is not a literal array ({array.type})")
            for item in named(array):
                if item.type != "object":
                    raise ValueError(f"{position(item)}: app setting is not an object literal ({item.type})")
                props = object_properties(item)
                if "name" not in props:
                    raise ValueError(f"{position(item)}: app setting without a name")
                name = string_literal(props["name"])
                if name is None:
                    raise ValueError(f"{position(props['name'])}: app setting name is not a plain string")
                names.append(name)
        elif node.type == "resource_declaration":
            parts = named(node)
            rtype = string_literal(parts[1]) if len(parts) > 1 else None
            body = parts[-1]
            if not rtype or not rtype.lower().startswith("microsoft.web/sites/config@") or body.type != "object":
                continue
            props = object_properties(body)
            if string_literal(props.get("name", body)) != "appsettings":
                continue
            settings = props.get("properties")
            if settings is None or settings.type != "object":
                raise ValueError(f"{position(body)}: appsettings resource without a literal properties object")
            names.extend(object_properties(settings))
    return names


# Variables that may follow the literal app settings in `concat(...)`: settings whose
# names the deployer chooses (TEAMS_WEBHOOK_URL__analytics, TEAMS_OFFERS__analytics...).
DYNAMIC_APP_SETTINGS = {"destinationAppSettings"}


def _concat_literal(call: tree_sitter.Node) -> tree_sitter.Node:
    """The array literal of `concat([...], <one of DYNAMIC_APP_SETTINGS>...)`."""
    parts = named(call)
    if parts[0].text.decode() != "concat":
        raise ValueError(f"{position(call)}: appSettings is a call of {parts[0].text.decode()}, not concat")
    args = named(parts[1])
    if not args or args[0].type != "array":
        raise ValueError(f"{position(call)}: concat does not start with the literal app settings")
    for extra in args[1:]:
        if extra.type != "identifier" or extra.text.decode() not in DYNAMIC_APP_SETTINGS:
            raise ValueError(f"{position(extra)}: only {sorted(DYNAMIC_APP_SETTINGS)} may follow the literal app settings")
    return args[0]


def handler_settings() -> dict:
    """What `handler settings --list --json` says the handler reads (built by cargo if
    needed, as the test suite has built it already)."""
    result = subprocess.run(
        ["cargo", "run", "--quiet", "--bin", "handler", "--", "settings", "--list", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "RUST_LOG": "off"},
        check=False,
    )
    assert result.returncode == 0, f"handler settings --list --json failed:\n{result.stderr}"
    return json.loads(result.stdout)


def settings_read(listed: dict) -> tuple[set[str], set[str]]:
    """(required, optional) from a `handler settings --list --json` document: every
    deployed setting is required; the optional ones, and each destination's settings and
    route settings, may be set."""
    required = set(listed["deployed"])
    optional = set(listed["optional"])
    for kind in listed["destinations"]:
        optional.update(kind["settings"], kind["routes"])
    return required, optional


def app_settings_mismatch(bicep_names: list[str], required: set[str], optional: set[str]) -> list[str]:
    """Human-readable problems; empty when the Bicep sets exactly what it should."""
    problems = []
    if not required:
        problems.append("the handler lists no setting a deployment must set")
    duplicates = sorted({n for n in bicep_names if bicep_names.count(n) > 1})
    if duplicates:
        problems.append(f"set more than once in Bicep: {', '.join(duplicates)}")
    given = set(bicep_names)
    missing = sorted(required - given)
    if missing:
        problems.append(f"read by the handler but not set by Bicep: {', '.join(missing)}")
    unknown = sorted(given - required - optional - HOST_OWNED_SETTINGS)
    if unknown:
        problems.append(f"set by Bicep but not read by the handler: {', '.join(unknown)}")
    return problems


def bicep_parameters(source: bytes) -> dict[str, bool]:
    """Parameter name -> whether it has a default value."""
    params = {}
    for node in named(parse(source).root_node):
        if node.type == "parameter_declaration":
            parts = named(node)
            params[parts[0].text.decode()] = len(parts) > 2
    return params


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
BICEPPARAM_FILES = sorted(INFRA.rglob("*.bicepparam"))
MAIN_BICEP = INFRA / "main.bicep"


# --------------------------------------------------------------------------- syntax


def test_infra_has_bicep_files():
    assert MAIN_BICEP in BICEP_FILES, f"{rel(MAIN_BICEP)} is missing"
    assert BICEPPARAM_FILES, "no .bicepparam file under infra/"


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_bicep_parses_without_errors(path: Path):
    problems = syntax_problems(path.read_bytes())
    assert not problems, "\n".join(p.render(rel(path)) for p in problems)


@pytest.mark.parametrize("path", BICEPPARAM_FILES, ids=rel)
def test_bicepparam_parses_without_errors(path: Path):
    source = path.read_bytes()
    problems = syntax_problems(source)
    if problems:  # the grammar may not know `param NAME = value`: check the var-equivalent
        problems = syntax_problems(bicepparam_as_bicep(source))
    assert not problems, "\n".join(p.render(rel(path)) for p in problems)


@pytest.mark.parametrize("path", BICEPPARAM_FILES, ids=rel)
def test_bicepparam_matches_its_template(path: Path):
    source = path.read_bytes()
    statements = named(parse(bicepparam_as_bicep(source)).root_node)
    using = [s for s in statements if s.type == "using_statement"]
    assert len(using) == 1, f"{rel(path)}: expected one `using` statement, found {len(using)}"
    target_literal = string_literal(named(using[0])[0])
    assert target_literal, f"{rel(path)}: `using` does not name a file"
    target = (path.parent / target_literal).resolve()
    assert target.is_file(), f"{rel(path)}: `using '{target_literal}'` names no file"

    assigned = {m.group(1).decode() for m in re.finditer(rb"^\s*param\s+([A-Za-z_]\w*)\s*=", source, re.MULTILINE)}
    assert assigned, f"{rel(path)} assigns no parameters"
    declared = bicep_parameters(target.read_bytes())
    unknown = sorted(assigned - set(declared))
    unassigned = sorted(n for n, has_default in declared.items() if not has_default and n not in assigned)
    assert not unknown, f"{rel(path)} assigns parameters {rel(target)} does not declare: {', '.join(unknown)}"
    assert not unassigned, f"{rel(path)} leaves required parameters unassigned: {', '.join(unassigned)}"


# --------------------------------------------------------------------------- the checks can fail


@pytest.mark.parametrize(
    ("snippet", "first_problem"),
    [
        (b"param location string = resourceGroup().location\nparam broken string =\n", (2, 21)),
        (b"var ok = 1\nresource app 'Microsoft.Web/sites@2025-03-01' = {\n  name: 'x'\n", (2, 1)),
        (b"var a = 'fine'\nvar b = 'unterminated\nvar c = 3\n", (4, 1)),  # the closing quote is missing at the end
        (b"output o string = concat('a', 'b'\n", (1, 34)),
        (b"var settings = [\n  {\n    name: 'A'\n    value: 'b'\n  }\n  }\n]\n", (6, 3)),
        (b"var a = 1\nvar b = a +\nvar c = 2\n", (3, 1)),
        (b"var x = {\n  a: 1\n  b 2\n}\n", (3, 3)),
    ],
    ids=["no-default-value", "unclosed-object", "unterminated-string", "unclosed-call", "stray-brace",
         "dangling-operator", "property-without-colon"],
)
def test_broken_bicep_is_reported(snippet: bytes, first_problem: tuple[int, int]):
    problems = syntax_problems(snippet)
    assert problems, f"no error reported for broken Bicep:\n{snippet.decode()}"
    assert (problems[0].line, problems[0].column) == first_problem, [p.render("snippet") for p in problems]


def test_valid_bicep_is_not_reported():
    snippet = (
        b"@description('who')\nparam to string\n"
        b"var list = filter(map(split(to, ';'), a => trim(a)), a => !empty(a))\n"
        b"output first string = length(list) > 0 ? list[0] : ''\n"
    )
    assert syntax_problems(snippet) == []


def test_broken_bicepparam_is_reported():
    source = b"using './main.bicep'\nparam digestTo = 'a@example.com'\nparam leadsTableName = \n"
    problems = syntax_problems(bicepparam_as_bicep(source))
    assert problems and problems[0].line == 3, [p.render("params") for p in problems]
    assert bicepparam_as_bicep(source).count(b"\n") == source.count(b"\n")


# --------------------------------------------------------------------------- app settings


FIXTURE_LISTED = {
    "deployed": ["AzureWebJobsStorage__accountName", "LEADS_TABLE", "ACS_ENDPOINT"],
    "optional": ["HANDLER_PORT"],
    "destinations": [
        {"kind": "email", "settings": ["SMTP_URL_IS_NOT_HERE", "NOTIFY_TO"], "routes": ["NOTIFY_OFFERS"]},
        {"kind": "smtp", "settings": ["SMTP_URL"], "routes": []},
    ],
}
FIXTURE_REQUIRED, FIXTURE_OPTIONAL = settings_read(FIXTURE_LISTED)

FIXTURE_BICEP = b"""
resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: 'x'
  properties: {
    siteConfig: {
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: 'st'
        }
        { name: 'LEADS_TABLE', value: 'Leads' }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING' // host-owned
          value: 'InstrumentationKey=0'
        }
      ]
    }
  }
}
resource settings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: app
  name: 'appsettings'
  properties: {
    ACS_ENDPOINT: 'https://acs'
    SMTP_URL: 'smtp://relay'
  }
}
"""


def test_settings_read_takes_each_destinations_settings_as_optional():
    assert FIXTURE_REQUIRED == {"AzureWebJobsStorage__accountName", "LEADS_TABLE", "ACS_ENDPOINT"}
    assert {"HANDLER_PORT", "NOTIFY_TO", "NOTIFY_OFFERS", "SMTP_URL"} <= FIXTURE_OPTIONAL


def test_bicep_app_setting_names_reads_both_forms():
    assert bicep_app_setting_names(FIXTURE_BICEP) == [
        "AzureWebJobsStorage__accountName",
        "LEADS_TABLE",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "ACS_ENDPOINT",
        "SMTP_URL",
    ]
    assert app_settings_mismatch(bicep_app_setting_names(FIXTURE_BICEP), FIXTURE_REQUIRED, FIXTURE_OPTIONAL) == []


def test_app_settings_mismatch_names_missing_and_unknown():
    names = ["LEADS_TABLE", "ACS_ENDPOINT", "FUNCTIONS_WORKER_RUNTIME", "LEADS_TABLE"]
    problems = "\n".join(app_settings_mismatch(names, FIXTURE_REQUIRED, FIXTURE_OPTIONAL))
    assert "not set by Bicep: AzureWebJobsStorage__accountName" in problems
    assert "not read by the handler: FUNCTIONS_WORKER_RUNTIME" in problems
    assert "more than once in Bicep: LEADS_TABLE" in problems


def test_unreadable_app_settings_are_an_error():
    for source in (
        b"var s = []\nresource a 'Microsoft.Web/sites@2025-03-01' = {\n  properties: {\n    siteConfig: {\n      appSettings: s\n    }\n  }\n}\n",
        b"resource a 'Microsoft.Web/sites@2025-03-01' = {\n  properties: {\n    siteConfig: {\n      appSettings: [\n        { name: 'X_${1}', value: '' }\n      ]\n    }\n  }\n}\n",
    ):
        with pytest.raises(ValueError):
            bicep_app_setting_names(source)


def _site_with_app_settings(expression: str) -> bytes:
    return (
        "resource a 'Microsoft.Web/sites@2025-03-01' = {\n  properties: {\n    siteConfig: {\n"
        f"      appSettings: {expression}\n    }}\n  }}\n}}\n"
    ).encode()


def test_named_destination_settings_may_follow_the_literal_ones():
    literal = "[\n        {\n          name: 'LEADS_TABLE'\n          value: 'x'\n        }\n      ]"
    ok = _site_with_app_settings(f"concat({literal}, destinationAppSettings)")
    assert bicep_app_setting_names(ok) == ["LEADS_TABLE"]
    for wrong in (f"concat({literal}, somethingElse)", f"union({literal}, destinationAppSettings)",
                  "concat(destinationAppSettings)"):
        with pytest.raises(ValueError):
            bicep_app_setting_names(_site_with_app_settings(wrong))


def test_bicep_app_settings_match_the_handler():
    listed = handler_settings()
    kinds = [kind["kind"] for kind in listed["destinations"]]
    assert "email" in kinds and "teams" in kinds, kinds
    names = bicep_app_setting_names(MAIN_BICEP.read_bytes())
    assert names, f"no app settings found in {rel(MAIN_BICEP)}"
    problems = app_settings_mismatch(names, *settings_read(listed))
    assert not problems, f"{rel(MAIN_BICEP)} vs handler settings --list:\n" + "\n".join(problems)


def test_site_config_has_no_flex_deprecated_properties():
    root = parse(MAIN_BICEP.read_bytes()).root_node
    site_configs = [n for n in walk(root) if n.type == "object_property" and property_key(n) == "siteConfig"]
    assert site_configs, f"no siteConfig in {rel(MAIN_BICEP)}"
    for node in site_configs:
        value = property_value(node)
        used = sorted(set(object_properties(value)) & FLEX_DEPRECATED_SITE_CONFIG) if value.type == "object" else []
        assert not used, f"{rel(MAIN_BICEP)}:{position(node)}: not valid on Flex Consumption: {', '.join(used)}"
