"""The app settings infra/main.bicep writes, evaluated from the template itself.

The Bicep CLI cannot run here, so this evaluates the part of the language the template uses
(literals, interpolation, parameters, variables, `!`/`||`/`&&`/`==`/`!=`, `cond ? a : b`,
lambdas, and the functions in FUNCTIONS) on tree-sitter-bicep's syntax tree, the way ARM
would: `string(true)` is 'True', `empty('')` is true. Anything else is an error naming the
line, so a template change this evaluator does not understand fails loudly instead of
yielding settings the template does not write.

What only exists once deployed (a resource's generated host name, the email domain Azure
assigns) comes from RESOURCE_OUTPUTS: realistic values of the same shape. A read of a resource
property that is not listed there is an error too.

As a command, for the Rust test that starts the handler with these settings
(tests/deployed_settings.rs):

    python tests/infra/bicep_eval.py [--env NAME=VALUE]... [--param NAME=JSON]...

evaluates infra/main.bicepparam with exactly the environment given (its
readEnvironmentVariable calls), overrides parameters with --param, and prints the Function
App's app settings as a JSON list of [name, value] pairs, in the template's order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import tree_sitter

from bicep_ast import line, named, object_properties, parse, property_key, property_value

REPO = Path(__file__).resolve().parents[2]
MAIN_BICEP = REPO / "infra" / "main.bicep"
MAIN_BICEPPARAM = REPO / "infra" / "main.bicepparam"

RESOURCE_GROUP = {
    "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-leads",
    "name": "rg-leads",
    "location": "westeurope",
}

# `symbol.properties.<path>` reads, by resource type (without its API version): what Azure
# returns for a deployed resource, in its documented shape.
RESOURCE_OUTPUTS: dict[str, dict[str, Any]] = {
    "Microsoft.Communication/emailServices/domains": {
        "fromSenderDomain": "3f2c9a1e-7b4d-4e8a-9c6f-1a2b3c4d5e6f.azurecomm.net",
    },
    "Microsoft.Communication/communicationServices": {
        "hostName": "acs-leads.unitedstates.communication.azure.com",
    },
    "Microsoft.Insights/components": {
        "ConnectionString": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
    },
    "Microsoft.Storage/storageAccounts": {
        "primaryEndpoints": {"blob": "https://stexample.blob.core.windows.net/"},
    },
    "Microsoft.Web/sites": {"defaultHostName": "leads-example.azurewebsites.net"},
}


class EvalError(Exception):
    pass


@dataclass
class Resource:
    symbol: str
    type: str
    body: tree_sitter.Node
    # `= if (condition) { ... }`: deployed only when it holds.
    condition: tree_sitter.Node | None = None


@dataclass
class Lambda:
    names: list[str]
    body: tree_sitter.Node
    scope: "Scope"


@dataclass
class Scope:
    template: "Template"
    locals: dict[str, Any] = field(default_factory=dict)

    def with_locals(self, values: dict[str, Any]) -> "Scope":
        return Scope(self.template, {**self.locals, **values})


def _arm_string(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _unique_string(*parts: str) -> str:
    # ARM's uniqueString is a 13-character base-32 hash; any stable hash of that shape will do.
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(alphabet[b % 32] for b in digest[:13])


def _call_lambda(fn: Lambda, *args: Any) -> Any:
    return fn.scope.template.evaluate(fn.body, fn.scope.with_locals(dict(zip(fn.names, args))))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "concat": lambda *xs: [y for x in xs for y in x] if all(isinstance(x, list) for x in xs) else "".join(map(_arm_string, xs)),
    "join": lambda xs, sep: sep.join(map(_arm_string, xs)),
    "string": _arm_string,
    "empty": lambda x: x is None or len(x) == 0,
    "contains": lambda container, item: item in container,
    "endsWith": lambda s, suffix: s.lower().endswith(suffix.lower()),
    "startsWith": lambda s, prefix: s.lower().startswith(prefix.lower()),
    "split": lambda s, sep: s.split(sep),
    "replace": lambda s, old, new: s.replace(old, new),
    "trim": lambda s: s.strip(),
    "toLower": lambda s: s.lower(),
    "length": len,
    "range": lambda start, count: list(range(start, start + count)),
    "items": lambda obj: [{"key": k, "value": v} for k, v in sorted(obj.items(), key=lambda kv: kv[0].lower())],
    "filter": lambda xs, fn: [x for x in xs if _call_lambda(fn, x)],
    "map": lambda xs, fn: [_call_lambda(fn, x) for x in xs],
    "union": lambda *xs: {k: v for x in xs for k, v in x.items()},
    "uniqueString": _unique_string,
    "guid": lambda *parts: _unique_string(*parts),
    "resourceGroup": lambda: dict(RESOURCE_GROUP),
    "subscriptionResourceId": lambda *parts: "/subscriptions/00000000-0000-0000-0000-000000000000/providers/" + "/".join(parts),
}


class Template:
    """One .bicep file: its parameters, variables and resources, evaluated on demand."""

    def __init__(self, source: bytes):
        self.root = parse(source).root_node
        self.params: dict[str, tree_sitter.Node | None] = {}
        self.variables: dict[str, tree_sitter.Node] = {}
        self.resources: dict[str, Resource] = {}
        for node in named(self.root):
            parts = named(node)
            if node.type == "parameter_declaration":
                self.params[parts[0].text.decode()] = parts[2] if len(parts) > 2 else None
            elif node.type == "variable_declaration":
                self.variables[parts[0].text.decode()] = parts[1]
            elif node.type == "resource_declaration":
                resource_type = parts[1].text.decode().strip("'").split("@")[0]
                body, condition = parts[-1], None
                if body.type == "if_statement":
                    condition, body = named(body)
                self.resources[parts[0].text.decode()] = Resource(
                    parts[0].text.decode(), resource_type, body, condition
                )
        self.values: dict[str, Any] = {}
        self._evaluating: set[str] = set()

    def bind(self, arguments: dict[str, Any]) -> "Template":
        """Sets the parameters: `arguments`, else each parameter's default."""
        unknown = sorted(set(arguments) - set(self.params))
        if unknown:
            raise EvalError(f"no such parameter: {', '.join(unknown)}")
        self.values = dict(arguments)
        for name, default in self.params.items():
            if name in self.values:
                continue
            if default is None:
                raise EvalError(f"parameter {name} has no default and was not given")
            self.values[name] = self.evaluate(default, Scope(self))
        return self

    def variable(self, name: str) -> Any:
        if name not in self.values:
            if name in self._evaluating:
                raise EvalError(f"variable {name} refers to itself")
            self._evaluating.add(name)
            self.values[name] = self.evaluate(self.variables[name], Scope(self))
            self._evaluating.discard(name)
        return self.values[name]

    def resource(self, symbol: str) -> dict[str, Any] | None:
        """The body of resource `symbol` as deployed, or None when its condition does not hold."""
        resource = self.resources[symbol]
        if resource.condition is not None and not self.evaluate(resource.condition, Scope(self)):
            return None
        return self.evaluate(resource.body, Scope(self))

    def app_settings(self) -> list[tuple[str, str]]:
        """The Function App's siteConfig.appSettings, as [name, value] pairs."""
        sites = [r for r in self.resources.values() if r.type == "Microsoft.Web/sites"]
        if len(sites) != 1:
            raise EvalError(f"expected one Microsoft.Web/sites resource, found {len(sites)}")
        body = object_properties(sites[0].body)
        site_config = object_properties(object_properties(body["properties"])["siteConfig"])
        settings = self.evaluate(site_config["appSettings"], Scope(self))
        return [(s["name"], _arm_string(s["value"])) for s in settings]

    # ------------------------------------------------------------------ expressions

    def evaluate(self, node: tree_sitter.Node, scope: Scope) -> Any:
        kind = node.type
        if kind == "string":
            return "".join(self._string_part(p, scope) for p in named(node))
        if kind == "number":
            return int(node.text.decode())
        if kind == "boolean":
            return node.text.decode() == "true"
        if kind == "null":
            return None
        if kind == "array":
            return [self.evaluate(item, scope) for item in named(node)]
        if kind == "object":
            return {property_key(p): self.evaluate(property_value(p), scope) for p in named(node) if p.type == "object_property"}
        if kind == "identifier":
            return self._identifier(node, scope)
        if kind == "parenthesized_expression":
            return self.evaluate(named(node)[0], scope)
        if kind == "unary_expression":
            operator = node.children[0].text.decode()
            operand = self.evaluate(named(node)[0], scope)
            if operator == "!":
                return not operand
            if operator == "-":
                return -operand
        if kind == "binary_expression":
            return self._binary(node, scope)
        if kind == "ternary_expression":
            condition, yes, no = named(node)
            return self.evaluate(yes if self.evaluate(condition, scope) else no, scope)
        if kind == "lambda_expression":
            parts = named(node)
            return Lambda([p.text.decode() for p in parts[:-1]], parts[-1], scope)
        if kind == "call_expression":
            return self._call(node, scope)
        if kind == "member_expression":
            return self._member(node, scope)
        if kind == "subscript_expression":
            target, index = named(node)
            return self.evaluate(target, scope)[self.evaluate(index, scope)]
        raise EvalError(f"line {line(node)}: cannot evaluate a {kind}: {node.text.decode()[:60]!r}")

    def _string_part(self, part: tree_sitter.Node, scope: Scope) -> str:
        if part.type == "string_content":
            return part.text.decode()
        if part.type == "escape_sequence":
            return {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\t": "\t", "\\$": "$"}[part.text.decode()]
        if part.type == "interpolation":
            return _arm_string(self.evaluate(named(part)[0], scope))
        raise EvalError(f"line {line(part)}: unexpected {part.type} in a string")

    def _identifier(self, node: tree_sitter.Node, scope: Scope) -> Any:
        name = node.text.decode()
        if name in scope.locals:
            return scope.locals[name]
        if name in self.params:
            return self.values[name]
        if name in self.variables:
            return self.variable(name)
        if name in self.resources:
            return self.resources[name]
        raise EvalError(f"line {line(node)}: unknown name {name}")

    def _binary(self, node: tree_sitter.Node, scope: Scope) -> Any:
        left, right = named(node)
        operator = next(c.text.decode() for c in node.children if not c.is_named)
        if operator == "||":
            return self.evaluate(left, scope) or self.evaluate(right, scope)
        if operator == "&&":
            return self.evaluate(left, scope) and self.evaluate(right, scope)
        a, b = self.evaluate(left, scope), self.evaluate(right, scope)
        operators = {
            "==": lambda: a == b,
            "!=": lambda: a != b,
            "=~": lambda: str(a).lower() == str(b).lower(),
            "<": lambda: a < b,
            ">": lambda: a > b,
            "<=": lambda: a <= b,
            ">=": lambda: a >= b,
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "??": lambda: a if a is not None else b,
        }
        if operator not in operators:
            raise EvalError(f"line {line(node)}: operator {operator} is not evaluated here")
        return operators[operator]()

    def _call(self, node: tree_sitter.Node, scope: Scope) -> Any:
        function, arguments = named(node)
        name = function.text.decode()
        if name not in FUNCTIONS:
            raise EvalError(f"line {line(node)}: function {name}() is not evaluated here")
        return FUNCTIONS[name](*(self.evaluate(a, scope) for a in named(arguments)))

    def _member(self, node: tree_sitter.Node, scope: Scope) -> Any:
        # Collect `a.b.c` from the left; a resource read is resolved as a whole path.
        path: list[str] = []
        target = node
        while target.type == "member_expression":
            base, member = named(target)
            path.insert(0, member.text.decode())
            target = base
        value = self.evaluate(target, scope)
        if isinstance(value, Resource):
            return self._resource_read(value, path, node)
        for name in path:
            if not isinstance(value, dict) or name not in value:
                raise EvalError(f"line {line(node)}: {node.text.decode()} reads a missing member {name}")
            value = value[name]
        return value

    def _resource_read(self, resource: Resource, path: list[str], node: tree_sitter.Node) -> Any:
        body = object_properties(resource.body)
        if path == ["name"]:
            return self.evaluate(body["name"], Scope(self))
        if path == ["id"]:
            return f"{RESOURCE_GROUP['id']}/providers/{resource.type}/{resource.symbol}"
        if path[0] == "properties" and len(path) > 1:
            value: Any = RESOURCE_OUTPUTS.get(resource.type, {})
            for name in path[1:]:
                if not isinstance(value, dict) or name not in value:
                    raise EvalError(
                        f"line {line(node)}: {node.text.decode()} is not in RESOURCE_OUTPUTS "
                        f"(add what Azure returns for {resource.type})"
                    )
                value = value[name]
            return value
        raise EvalError(f"line {line(node)}: cannot read {'.'.join(path)} of resource {resource.symbol}")


_PARAM_LINE = re.compile(r"^(\s*)param(\s+[A-Za-z_][A-Za-z0-9_]*\s*=)", re.MULTILINE)


def bicepparam_arguments(path: Path, environment: dict[str, str]) -> dict[str, Any]:
    """The parameters a .bicepparam file assigns, its readEnvironmentVariable calls answered
    from `environment` (an unset variable without a default is an error, as in Bicep)."""
    source = _PARAM_LINE.sub(r"\1var  \2", path.read_text(encoding="utf-8")).encode()
    file = Template(source)

    def read_environment_variable(name: str, *default: str) -> str:
        if name in environment:
            return environment[name]
        if default:
            return default[0]
        raise EvalError(f"{path.name}: readEnvironmentVariable('{name}') without a default, and {name} is not set")

    functions = dict(FUNCTIONS)
    functions["readEnvironmentVariable"] = read_environment_variable
    saved = dict(FUNCTIONS)
    FUNCTIONS.update(functions)
    try:
        return {name: file.variable(name) for name in file.variables}
    finally:
        FUNCTIONS.clear()
        FUNCTIONS.update(saved)


def app_settings(environment: dict[str, str], overrides: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """What `az deployment group create -p infra/main.bicepparam` writes as app settings, run with
    `environment`, with `overrides` replacing parameters."""
    arguments = bicepparam_arguments(MAIN_BICEPPARAM, environment)
    arguments.update(overrides or {})
    return Template(MAIN_BICEP.read_bytes()).bind(arguments).app_settings()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=JSON")
    args = parser.parse_args(argv)
    environment = dict(pair.split("=", 1) for pair in args.env)
    overrides = {name: json.loads(value) for name, value in (pair.split("=", 1) for pair in args.param)}
    try:
        settings = app_settings(environment, overrides)
    except EvalError as error:
        print(f"bicep_eval: {error}", file=sys.stderr)
        return 1
    json.dump(settings, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
