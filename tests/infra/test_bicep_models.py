"""infra/*.bicep checked against Azure's own resource models, without the Bicep CLI or a deployment.

A misspelt property (`instanceMemoryMb` for `instanceMemoryMB`) or an enum value ARM does not know
(`minimumTlsVersion: 'TLS9'`) parses fine, and would only fail in the user's subscription. Microsoft's
Python management SDKs (azure-mgmt-*, pinned in requirements-dev.txt) are generated from the same
REST API specs as ARM's and Bicep's types: each msrest model class lists its JSON property names in
`_attribute_map` (`{python_name: {'key': 'properties.serverFarmId', 'type': 'SiteConfig'}}`), and its
enums are Enum classes of the models module. For every `resource sym 'Type@apiVersion' = {...}`:

1. API version: RESOURCE_MODELS names the SDK package, the operations class serving the type and
   its model class. The SDK's API versions for it are read from that operations class (one per
   `vYYYY_MM_DD` subpackage in multi-API packages). The models of the closest version not newer
   than the template's are used. A template version newer than all of them is a note (a pytest
   warning), checked against the newest; one older than all of them fails.
2. Property names: every key of every object literal in the body (nested objects, arrays of
   objects, the objects `[for ...]` loops and `map(..., x => {...})` lambdas build) is looked up in
   the model, following nested model, `[Type]` list and `{Type}` map types (`object` is free-form).
   A key the model lacks fails as `file:line: resource sym (Type): unknown property path a.b.c;
   did you mean X?`. Names are compared case-sensitively, as the SDK spells them. Bicep's own keys
   (`name`, `parent`, `scope`, `dependsOn`) are not the model's; `location`, `kind`, `sku`,
   `identity`, `tags` and `properties` are.
3. Values: a plain string literal assigned to an enum-typed property must be one of the enum's
   values (case-insensitively, as ARM compares them), and so must every `@allowed` value of a
   parameter assigned directly to one. A literal (or a typed parameter) of a kind the property
   cannot hold (a string for an int, an object for a string) fails too.
4. Reads: `sym.properties.a.b` expressions anywhere in the file are looked up the same way, in the
   model a GET returns (e.g. StorageAccount rather than StorageAccountCreateParameters).

Self-tests feed the check broken copies of main.bicep, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import difflib
import enum
import functools
import importlib
import importlib.metadata
import importlib.util
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tree_sitter

from bicep_ast import line, named, parse, property_key, property_value, string_literal, walk

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN_BICEP = INFRA / "main.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


# --------------------------------------------------------------------------- which SDK model


@dataclass(frozen=True)
class SdkResource:
    package: str  # the SDK's import name, e.g. "azure.mgmt.web"
    operations: str  # the operations class that creates the resource: its API versions are the type's
    model: str | dict[str, str]  # the body's model class, or one per resource name (sites/config)
    read_model: str | None = None  # what a GET returns, for `sym.properties...` reads; default: model


# Keys are lower-case: ARM resource types are case-insensitive.
RESOURCE_MODELS: dict[str, SdkResource] = {
    "microsoft.web/serverfarms": SdkResource("azure.mgmt.web", "AppServicePlansOperations", "AppServicePlan"),
    "microsoft.web/sites": SdkResource("azure.mgmt.web", "WebAppsOperations", "Site"),
    "microsoft.web/sites/basicpublishingcredentialspolicies": SdkResource(
        "azure.mgmt.web", "WebAppsOperations", "CsmPublishingCredentialsPoliciesEntity"
    ),
    "microsoft.web/sites/config": SdkResource(
        "azure.mgmt.web",
        "WebAppsOperations",
        {
            "appsettings": "StringDictionary",
            "metadata": "StringDictionary",
            "connectionstrings": "ConnectionStringDictionary",
            "logs": "SiteLogsConfig",
            "web": "SiteConfigResource",
        },
    ),
    "microsoft.storage/storageaccounts": SdkResource(
        "azure.mgmt.storage", "StorageAccountsOperations", "StorageAccountCreateParameters", "StorageAccount"
    ),
    "microsoft.storage/storageaccounts/blobservices": SdkResource(
        "azure.mgmt.storage", "BlobServicesOperations", "BlobServiceProperties"
    ),
    "microsoft.storage/storageaccounts/blobservices/containers": SdkResource(
        "azure.mgmt.storage", "BlobContainersOperations", "BlobContainer"
    ),
    "microsoft.storage/storageaccounts/tableservices": SdkResource(
        "azure.mgmt.storage", "TableServicesOperations", "TableServiceProperties"
    ),
    "microsoft.storage/storageaccounts/tableservices/tables": SdkResource(
        "azure.mgmt.storage", "TableOperations", "Table"
    ),
    "microsoft.storage/storageaccounts/queueservices": SdkResource(
        "azure.mgmt.storage", "QueueServicesOperations", "QueueServiceProperties"
    ),
    "microsoft.storage/storageaccounts/queueservices/queues": SdkResource(
        "azure.mgmt.storage", "QueueOperations", "StorageQueue"
    ),
    "microsoft.operationalinsights/workspaces": SdkResource(
        "azure.mgmt.loganalytics", "WorkspacesOperations", "Workspace"
    ),
    "microsoft.insights/components": SdkResource(
        "azure.mgmt.applicationinsights", "ComponentsOperations", "ApplicationInsightsComponent"
    ),
    "microsoft.insights/webtests": SdkResource("azure.mgmt.applicationinsights", "WebTestsOperations", "WebTest"),
    "microsoft.insights/actiongroups": SdkResource(
        "azure.mgmt.monitor", "ActionGroupsOperations", "ActionGroupResource"
    ),
    "microsoft.insights/scheduledqueryrules": SdkResource(
        "azure.mgmt.monitor", "ScheduledQueryRulesOperations", "ScheduledQueryRuleResource"
    ),
    "microsoft.insights/metricalerts": SdkResource(
        "azure.mgmt.monitor", "MetricAlertsOperations", "MetricAlertResource"
    ),
    "microsoft.communication/communicationservices": SdkResource(
        "azure.mgmt.communication", "CommunicationServicesOperations", "CommunicationServiceResource"
    ),
    "microsoft.communication/emailservices": SdkResource(
        "azure.mgmt.communication", "EmailServicesOperations", "EmailServiceResource"
    ),
    "microsoft.communication/emailservices/domains": SdkResource(
        "azure.mgmt.communication", "DomainsOperations", "DomainResource"
    ),
    "microsoft.communication/emailservices/domains/senderusernames": SdkResource(
        "azure.mgmt.communication", "SenderUsernamesOperations", "SenderUsernameResource"
    ),
    "microsoft.authorization/roleassignments": SdkResource(
        "azure.mgmt.authorization", "RoleAssignmentsOperations", "RoleAssignmentCreateParameters", "RoleAssignment"
    ),
}

# Keys of a resource body that are Bicep's or ARM's, not the resource model's.
BICEP_RESOURCE_KEYS = frozenset({"name", "parent", "scope", "dependsOn"})
# What `sym.x` may read besides the model's properties.
BICEP_RESOURCE_ACCESSORS = frozenset({"id", "name", "type", "apiVersion"})

# `"api-version", "2023-01-01"` / `api_version = "2021-06-01"` / `kwargs.pop("api_version", "2025-03-01")`
_API_VERSION = re.compile(r"""api[-_]version["']?\s*[,=]\s*["'](\d{4}-\d{2}-\d{2}(?:-preview)?)["']""")


def api_version_key(version: str) -> tuple[str, int]:
    """Sorts dates; a preview before the stable version of the same date."""
    return version.removesuffix("-preview"), 0 if version.endswith("-preview") else 1


@dataclass(frozen=True)
class SdkApiVersion:
    version: str
    models: str  # the module holding that version's models


@functools.cache
def sdk_api_versions(package: str, operations: str) -> tuple[SdkApiVersion, ...]:
    """The API versions `package` ships for the operations class `operations`, oldest first.

    A single-API package has one `operations/` directory; a multi-API one has a `vYYYY_MM_DD/`
    subpackage per version. The version is the operations module's default `api-version` (or,
    when the operations take it from the client, the client configuration's default).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"{package} is not installed: run scripts/setup-dev (requirements-dev.txt pins it)")
    root = Path(spec.submodule_search_locations[0])
    flavours = [(root, package)] + [(d, f"{package}.{d.name}") for d in sorted(root.glob("v[0-9]*")) if d.is_dir()]
    found: dict[str, SdkApiVersion] = {}
    for directory, module in flavours:
        for source in sorted((directory / "operations").glob("*.py")):
            text = source.read_text(encoding="utf-8")
            if not re.search(rf"^class {operations}\b", text, re.MULTILINE):
                continue
            versions = set(_API_VERSION.findall(text))
            configuration = directory / "_configuration.py"
            if not versions and configuration.is_file():
                versions = set(_API_VERSION.findall(configuration.read_text(encoding="utf-8")))
            for version in versions:
                found[version] = SdkApiVersion(version, f"{module}.models")
    return tuple(sorted(found.values(), key=lambda v: api_version_key(v.version)))


def distribution(package: str) -> str:
    """`azure.mgmt.web` -> `azure-mgmt-web 10.1.0`."""
    name = package.replace(".", "-")
    return f"{name} {importlib.metadata.version(name)}"


# --------------------------------------------------------------------------- models as JSON types


@dataclass(eq=False)
class Leaf:
    """A JSON scalar (`str`, `int`, `duration`, ...) or free-form JSON (`object`)."""

    type_name: str
    enum: type[enum.Enum] | None = None


@dataclass(eq=False)
class ListOf:
    item: JsonType


@dataclass(eq=False)
class MapOf:
    item: JsonType


@dataclass(eq=False)
class ObjectType:
    """A model, or the group of its flattened keys under one name (`Site.properties`)."""

    name: str
    fields: dict[str, JsonType] = field(default_factory=dict)
    open: bool = False  # takes keys beyond `fields` (msrest additional_properties)
    discriminator: str | None = None  # JSON key whose value picks one of `subtypes`
    subtypes: dict[str, ObjectType] = field(default_factory=dict)

    def all_fields(self) -> dict[str, JsonType]:
        """Own fields and those of every subtype: what an object whose subtype is unknown may hold."""
        merged = {}
        for subtype in self.subtypes.values():
            merged.update(subtype.fields)
        merged.update(self.fields)
        return merged

    def fields_for(self, obj: tree_sitter.Node) -> dict[str, JsonType]:
        """The fields an object literal may hold: those of the subtype its discriminator names, if any."""
        if not self.discriminator:
            return self.fields
        for prop in named(obj):
            if prop.type == "object_property" and property_key(prop) == self.discriminator:
                subtype = self.subtypes.get(string_literal(property_value(prop)) or "")
                if subtype is not None:
                    return subtype.fields
        return self.all_fields()


JsonType = Leaf | ListOf | MapOf | ObjectType

# msrest scalar types and the Bicep literal kinds each takes.
SCALAR_TAKES = {
    "str": {"string"},
    "duration": {"string"},
    "iso-8601": {"string"},
    "rfc-1123": {"string"},
    "date": {"string"},
    "time": {"string"},
    "base64": {"string"},
    "bytearray": {"string"},
    "int": {"int"},
    "long": {"int"},
    "unix-time": {"int"},
    "float": {"int"},
    "decimal": {"int"},
    "bool": {"bool"},
}

# `:vartype min_tls_version: str or ~azure.mgmt.web.models.SupportedTlsVersions` (also :type:, :paramtype:)
_DOC_TYPE = re.compile(r":(?:vartype|type|paramtype) (\w+):(.*?)(?=\n\s*:[a-z]|\Z)", re.DOTALL)
_DOC_CLASS = re.compile(r"~[\w.]+\.(\w+)")


class SdkModels:
    """One API version's models module, read as JSON types."""

    def __init__(self, module: str):
        self.module_name = module
        self.module = importlib.import_module(module)
        self._objects: dict[str, ObjectType] = {}

    def model(self, class_name: str) -> ObjectType:
        if class_name in self._objects:
            return self._objects[class_name]
        cls = getattr(self.module, class_name, None)
        if cls is None:
            raise LookupError(f"{self.module_name} has no model {class_name}")
        attribute_map = getattr(cls, "_attribute_map", None)
        if attribute_map is None:
            raise TypeError(
                f"{self.module_name}.{class_name} has no msrest _attribute_map (a TypeSpec-generated SDK?): "
                "pin an msrest-based release in requirements-dev.txt"
            )
        model = self._objects[class_name] = ObjectType(class_name)  # cached first: models can nest themselves
        enums = self._enums(cls)
        for attribute, spec in attribute_map.items():
            if spec["key"] == "":  # additional_properties: any other key
                model.open = True
                continue
            *groups, key = [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", spec["key"])]
            holder = model
            for group in groups:  # flattened: 'properties.serverFarmId'
                nested = holder.fields.setdefault(group, ObjectType(f"{holder.name}.{group}"))
                assert isinstance(nested, ObjectType), f"{class_name}: {spec['key']} nests under a non-object"
                holder = nested
            holder.fields[key] = self.json_type(spec["type"], enums.get(attribute))
        for attribute, subclasses in cls.__dict__.get("_subtype_map", {}).items():
            model.discriminator = attribute_map[attribute]["key"].replace("\\.", ".")
            model.subtypes = {value: self.model(name) for value, name in subclasses.items()}
        return model

    def json_type(self, msrest_type: str, enum_class: type[enum.Enum] | None = None) -> JsonType:
        if msrest_type.startswith("[") and msrest_type.endswith("]"):
            return ListOf(self.json_type(msrest_type[1:-1], enum_class))
        if msrest_type.startswith("{") and msrest_type.endswith("}"):
            return MapOf(self.json_type(msrest_type[1:-1], enum_class))
        if msrest_type == "object" or msrest_type in SCALAR_TAKES:
            return Leaf(msrest_type, enum_class)
        named_type = getattr(self.module, msrest_type, None)
        if isinstance(named_type, type) and issubclass(named_type, enum.Enum):  # older generators name enums here
            return Leaf("str", named_type)
        return self.model(msrest_type)

    def _enums(self, cls: type) -> dict[str, type[enum.Enum]]:
        """Attribute -> enum, read from the docstrings (`_attribute_map` types enums as 'str')."""
        enums = {}
        for klass in reversed(cls.__mro__):
            for doc in (klass.__dict__.get("__doc__"), getattr(klass.__dict__.get("__init__"), "__doc__", None)):
                for attribute, text in _DOC_TYPE.findall(doc or ""):
                    for name in _DOC_CLASS.findall(text):
                        candidate = getattr(self.module, name, None)
                        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
                            enums[attribute] = candidate
        return enums


@functools.cache
def sdk_models(module: str) -> SdkModels:
    return SdkModels(module)


def describe(json_type: JsonType) -> str:
    if isinstance(json_type, Leaf):
        return f"{json_type.type_name} ({json_type.enum.__name__})" if json_type.enum else json_type.type_name
    if isinstance(json_type, ListOf):
        return f"[{describe(json_type.item)}]"
    if isinstance(json_type, MapOf):
        return f"{{{describe(json_type.item)}}}"
    return json_type.name


def enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


def unknown_key_hint(key: str, known: list[str], where: str) -> str:
    """'; did you mean X?' (the nearest known name, by difflib), and the case-sensitivity caveat."""
    by_lower = {name.lower(): name for name in known}
    if key.lower() in by_lower:
        return f"; did you mean {by_lower[key.lower()]}? (names are case-sensitive, as the SDK spells them)"
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {by_lower[close[0]]}? (names are case-sensitive, as the SDK spells them)"
    return f"; {where} has nothing like it (names are case-sensitive, as the SDK spells them)"


# --------------------------------------------------------------------------- the template


@dataclass(frozen=True)
class Param:
    name: str
    kind: str | None  # 'string', 'int', 'bool'; None for other types
    allowed: tuple[tuple[tree_sitter.Node, str | int | bool], ...]  # @allowed values with their nodes


@dataclass
class Resource:
    symbol: str
    type: str
    api_version: str
    node: tree_sitter.Node
    body: tree_sitter.Node | None
    name: str | None  # a literal name, else None
    sdk: SdkResource | None = None
    models: SdkModels | None = None


_PRIMITIVE_KINDS = {"string": "string", "int": "int", "bool": "bool"}
_A_KIND = {"string": "a string", "int": "an int", "bool": "a bool"}


def literal(node: tree_sitter.Node) -> tuple[str, str | int | bool | None] | None:
    """(kind, value) of a literal: a plain string's value, an interpolated string's None; else None."""
    if node.type == "string":
        return "string", string_literal(node)
    if node.type == "number":
        return "int", int(node.text)
    if node.type == "boolean":
        return "bool", node.text == b"true"
    return None


def parameters(root: tree_sitter.Node) -> dict[str, Param]:
    params: dict[str, Param] = {}
    decorators: list[tree_sitter.Node] = []
    for node in named(root):
        if node.type == "decorators":
            decorators = named(node)
            continue
        if node.type == "parameter_declaration":
            name, declared = named(node)[0].text.decode(), named(node)[1]
            allowed: list[tuple[tree_sitter.Node, str | int | bool]] = []
            for decorator in decorators:
                call = named(decorator)[0]
                if call.type == "call_expression" and named(call)[0].text == b"allowed":
                    for array in named(named(call)[-1]):
                        for item in named(array) if array.type == "array" else []:
                            value = literal(item)
                            if value is not None and value[1] is not None:
                                allowed.append((item, value[1]))
            params[name] = Param(name, _PRIMITIVE_KINDS.get(declared.text.decode()), tuple(allowed))
        decorators = []
    return params


def resource_body(declaration: tree_sitter.Node) -> tree_sitter.Node | None:
    """The object literal of `= {...}`, `= if (c) {...}` or `= [for x in xs: {...}]`."""
    node = named(declaration)[-1]
    while node.type != "object":
        inner = [c for c in named(node) if c.type in ("object", "if_statement", "for_statement")]
        if not inner:
            return None
        node = inner[-1]
    return node


def resources(root: tree_sitter.Node) -> dict[str, Resource]:
    found = {}
    for node in named(root):
        if node.type != "resource_declaration":
            continue
        symbol, type_at_version = named(node)[0].text.decode(), string_literal(named(node)[1]) or ""
        resource_type, _, api_version = type_at_version.partition("@")
        body = resource_body(node)
        name = None
        if body is not None:
            for prop in named(body):
                if prop.type == "object_property" and property_key(prop) == "name":
                    name = string_literal(property_value(prop))
        found[symbol] = Resource(symbol, resource_type, api_version, node, body, name)
    return found


# --------------------------------------------------------------------------- the check


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Checker:
    def __init__(self, source: bytes, path: str):
        self.path = path
        self.root = parse(source).root_node
        self.params = parameters(self.root)
        self.resources = resources(self.root)
        self.report = Report()

    def run(self) -> Report:
        for resource in self.resources.values():
            self.check_resource(resource)
        self.check_reads()
        return self.report

    # ---- reporting

    def problem(self, node: tree_sitter.Node, resource: Resource, what: str) -> None:
        self.report.problems.append(f"{self.path}:{line(node)}: resource {resource.symbol} ({resource.type}): {what}")

    def note(self, node: tree_sitter.Node, resource: Resource, what: str) -> None:
        self.report.notes.append(f"{self.path}:{line(node)}: resource {resource.symbol} ({resource.type}): {what}")

    # ---- API version and models

    def check_resource(self, resource: Resource) -> None:
        sdk = RESOURCE_MODELS.get(resource.type.lower())
        if sdk is None:
            self.problem(resource.node, resource, "no SDK model is mapped for this type: add it to RESOURCE_MODELS")
            return
        known = sdk_api_versions(sdk.package, sdk.operations)
        if not known:
            self.problem(resource.node, resource, f"{distribution(sdk.package)} has no {sdk.operations}")
            return
        listed = ", ".join(v.version for v in known)
        wanted = api_version_key(resource.api_version)
        older = [v for v in known if api_version_key(v.version) <= wanted]
        if not older:
            self.problem(
                resource.node,
                resource,
                f"API version {resource.api_version} is older than every one {distribution(sdk.package)} knows "
                f"({listed}): deploy one of those, or pin an older SDK release in requirements-dev.txt",
            )
            return
        chosen = older[-1]
        if chosen.version != resource.api_version:
            newest = chosen is known[-1]
            self.note(
                resource.node,
                resource,
                f"API version {resource.api_version} is "
                + ("newer than any" if newest else "not one")
                + f" {distribution(sdk.package)} knows ({listed}): checked against {chosen.version}",
            )
        resource.sdk, resource.models = sdk, sdk_models(chosen.models)
        model = self.model_of(resource, read=False)
        if model is not None and resource.body is not None:
            self.check_object(resource, resource.body, model, "", top_level=True)

    def model_of(self, resource: Resource, read: bool) -> ObjectType | None:
        assert resource.sdk is not None and resource.models is not None
        class_name = resource.sdk.read_model if read and resource.sdk.read_model else resource.sdk.model
        if isinstance(class_name, dict):
            if resource.name not in class_name:
                if not read:
                    self.problem(
                        resource.node,
                        resource,
                        f"no SDK model for the name {resource.name!r}: RESOURCE_MODELS knows {', '.join(class_name)}",
                    )
                return None
            class_name = class_name[resource.name]
        return resource.models.model(class_name)

    # ---- the body

    def check_object(
        self, resource: Resource, obj: tree_sitter.Node, model: ObjectType, path: str, top_level: bool = False
    ) -> None:
        fields = model.fields_for(obj)
        for prop in named(obj):
            if prop.type != "object_property":
                continue
            key = property_key(prop)
            if top_level and key in BICEP_RESOURCE_KEYS:
                continue
            key_path = f"{path}.{key}" if path else key
            if key in fields:
                self.check_value(resource, property_value(prop), fields[key], key_path)
            elif not model.open:
                known = sorted(fields) + (sorted(BICEP_RESOURCE_KEYS) if top_level else [])
                hint = unknown_key_hint(key, known, model.name)
                self.problem(prop, resource, f"unknown property path {key_path}{hint}")

    def check_value(self, resource: Resource, value: tree_sitter.Node, json_type: JsonType, path: str) -> None:
        if isinstance(json_type, Leaf) and json_type.type_name == "object":
            return  # free-form JSON
        if value.type == "object":
            if isinstance(json_type, ObjectType):
                self.check_object(resource, value, json_type, path)
            elif isinstance(json_type, MapOf):
                for prop in named(value):
                    if prop.type == "object_property":
                        self.check_value(resource, property_value(prop), json_type.item, f"{path}.{property_key(prop)}")
            else:
                self.problem(value, resource, f"{path} is {describe(json_type)}, not an object")
        elif value.type in ("array", "for_statement"):
            if not isinstance(json_type, ListOf):
                self.problem(value, resource, f"{path} is {describe(json_type)}, not an array")
            elif value.type == "array":
                for index, item in enumerate(named(value)):
                    self.check_value(resource, item, json_type.item, f"{path}[{index}]")
            else:  # [for x in xs: item]
                self.check_value(resource, named(value)[-1], json_type.item, f"{path}[*]")
        elif value.type == "call_expression" and isinstance(json_type, ListOf):
            function, arguments = named(value)[0], named(named(value)[-1])
            if function.text in (b"map", b"sys.map") and arguments and arguments[-1].type == "lambda_expression":
                self.check_value(resource, named(arguments[-1])[-1], json_type.item, f"{path}[*]")
        elif (found := literal(value)) is not None:
            kind, constant = found
            self.check_scalar(resource, value, json_type, path, kind, None if constant is None else [(value, constant)])
        elif value.type == "identifier" and value.text.decode() in self.params:
            param = self.params[value.text.decode()]
            if param.kind is not None:
                self.check_scalar(resource, value, json_type, path, param.kind, list(param.allowed), param)

    def check_scalar(
        self,
        resource: Resource,
        value: tree_sitter.Node,
        json_type: JsonType,
        path: str,
        kind: str,
        constants: list[tuple[tree_sitter.Node, str | int | bool]] | None,
        param: Param | None = None,
    ) -> None:
        """A literal (or a parameter, with its @allowed values) assigned to `path`."""
        source = f"parameter {param.name} ({kind})" if param else _A_KIND[kind]
        if not isinstance(json_type, Leaf) or kind not in SCALAR_TAKES.get(json_type.type_name, set()):
            self.problem(value, resource, f"{path} is {describe(json_type)}, not {source}")
            return
        if json_type.enum is None or not constants:
            return
        allowed = enum_values(json_type.enum)
        for node, constant in constants:
            if str(constant).lower() not in {a.lower() for a in allowed}:
                via = f" (@allowed value of parameter {param.name})" if param else ""
                self.problem(
                    node,
                    resource,
                    f"{path} = {constant!r}{via} is not a value of {json_type.enum.__name__}: {', '.join(allowed)}",
                )

    # ---- reads: sym.properties.a.b

    def check_reads(self) -> None:
        for node, symbol, steps in self.member_chains(self.root):
            resource = self.resources[symbol]
            if resource.models is None:
                continue  # unmapped, or its API version failed: reported already
            if steps and steps[0] is None:
                steps = steps[1:]  # sym[i] of a resource loop
            if not steps or steps[0] in BICEP_RESOURCE_ACCESSORS:
                continue
            current: JsonType | None = self.model_of(resource, read=True)
            path = ""
            for step in steps:
                if current is None or (isinstance(current, Leaf) and current.type_name == "object"):
                    break
                if step is None:  # [index]
                    current = current.item if isinstance(current, ListOf | MapOf) else None
                    path += "[]"
                    continue
                path = f"{path}.{step}" if path else step
                if isinstance(current, MapOf):
                    current = current.item
                elif isinstance(current, ObjectType):
                    fields = current.all_fields()
                    if step not in fields and not current.open:
                        hint = unknown_key_hint(step, sorted(fields), current.name)
                        read_as = node.text.decode()
                        self.problem(node, resource, f"unknown property path {path} (read as {read_as}){hint}")
                        break
                    current = fields.get(step)
                else:
                    break

    def member_chains(self, root: tree_sitter.Node):
        """(node, resource symbol, [property name, or None for an index]) of each outermost `sym.a[0].b`."""
        for node in walk(root):
            if node.type not in ("member_expression", "subscript_expression"):
                continue
            parent = node.parent
            if parent is not None and parent.type in ("member_expression", "subscript_expression"):
                if named(parent)[0] == node:
                    continue  # not the outermost link of its chain
            steps: list[str | None] = []
            link = node
            while link.type in ("member_expression", "subscript_expression"):
                parts = named(link)
                steps.insert(0, parts[-1].text.decode() if link.type == "member_expression" else None)
                link = parts[0]
            if link.type == "identifier" and link.text.decode() in self.resources:
                yield node, link.text.decode(), steps


def check_bicep(source: bytes, path: str) -> Report:
    return Checker(source, path).run()


class SdkApiVersionNote(UserWarning):
    """A resource's API version is not one the pinned SDK ships: it was checked against a neighbour."""


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# --------------------------------------------------------------------------- infra/*.bicep


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_bicep_matches_the_sdk_models(path: Path):
    report = check_bicep(path.read_bytes(), rel(path))
    for note in report.notes:
        warnings.warn(SdkApiVersionNote(note), stacklevel=1)
    assert not report.problems, "\n".join(report.problems)


def test_every_mapped_model_exists():
    for resource_type, sdk in RESOURCE_MODELS.items():
        known = sdk_api_versions(sdk.package, sdk.operations)
        assert known, f"{resource_type}: {distribution(sdk.package)} has no {sdk.operations}"
        models = sdk_models(known[-1].models)
        names = sdk.model.values() if isinstance(sdk.model, dict) else [sdk.model]
        for name in [*names, *([sdk.read_model] if sdk.read_model else [])]:
            assert models.model(name).fields, f"{resource_type}: {known[-1].models}.{name} has no properties"


# --------------------------------------------------------------------------- the check can fail


def main_bicep_with(old: str, new: str) -> tuple[bytes, int]:
    """main.bicep with `old` (which occurs once) replaced by `new`, and the line it is on."""
    source = MAIN_BICEP.read_text(encoding="utf-8")
    assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times in {rel(MAIN_BICEP)}"
    return source.replace(old, new).encode(), source[: source.index(old)].count("\n") + 1


def only_problem(source: bytes) -> str:
    problems = check_bicep(source, "infra/main.bicep").problems
    assert len(problems) == 1, problems
    return problems[0]


def test_misspelt_instance_memory_is_reported():
    source, at = main_bicep_with("instanceMemoryMB: instanceMemoryMB", "instanceMemoryMb: instanceMemoryMB")
    assert only_problem(source) == (
        f"infra/main.bicep:{at}: resource app (Microsoft.Web/sites): unknown property path "
        "properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMb; did you mean instanceMemoryMB? "
        "(names are case-sensitive, as the SDK spells them)"
    )


def test_unknown_site_config_property_is_reported():
    source, at = main_bicep_with("minTlsVersion: '1.2'", "minimumTlsVersion: '1.2'")
    assert only_problem(source).startswith(
        f"infra/main.bicep:{at}: resource app (Microsoft.Web/sites): unknown property path "
        "properties.siteConfig.minimumTlsVersion; did you mean minTlsVersion?"
    )


def test_bad_enum_literal_is_reported():
    source, at = main_bicep_with("minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS9'")
    assert only_problem(source) == (
        f"infra/main.bicep:{at}: resource storage (Microsoft.Storage/storageAccounts): "
        "properties.minimumTlsVersion = 'TLS9' is not a value of MinimumTlsVersion: TLS1_0, TLS1_1, TLS1_2, TLS1_3"
    )


def test_enum_values_compare_case_insensitively():
    source, _ = main_bicep_with("minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'tls1_2'")
    assert check_bicep(source, "infra/main.bicep").problems == []


def test_allowed_values_of_a_parameter_are_checked_against_the_enum():
    source = b"""
@allowed([
  'Hot'
  'Frozen'
])
param tier string = 'Hot'

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: 'st'
  location: 'westeurope'
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: tier
  }
}
"""
    problems = check_bicep(source, "t.bicep").problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        "t.bicep:4: resource storage (Microsoft.Storage/storageAccounts): properties.accessTier = 'Frozen' "
        "(@allowed value of parameter tier) is not a value of AccessTier:"
    ), problems


def test_objects_built_by_map_and_for_are_checked():
    source = b"""
param to array
resource group 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag'
  location: 'global'
  properties: {
    groupShortName: 'g'
    enabled: true
    emailReceivers: map(to, a => {
      name: a
      emailAdress: a
    })
    smsReceivers: [for n in to: {
      name: n
      countryCode: '1'
      phoneNumbr: n
    }]
  }
}
"""
    problems = check_bicep(source, "t.bicep").problems
    assert [p.split(";")[0] for p in problems] == [
        "t.bicep:11: resource group (Microsoft.Insights/actionGroups): unknown property path "
        "properties.emailReceivers[*].emailAdress",
        "t.bicep:16: resource group (Microsoft.Insights/actionGroups): unknown property path "
        "properties.smsReceivers[*].phoneNumbr",
    ], problems


def test_arrays_of_objects_and_literal_kinds_are_checked():
    source, _ = main_bicep_with("operator: 'Include'", "operator: 'Includes'")
    source = source.replace(b"severity: 1", b"severity: '1'", 1)  # the first alert's
    problems = check_bicep(source, "infra/main.bicep").problems
    assert any(
        "properties.criteria.allOf[0].dimensions[0].operator = 'Includes' is not a value of DimensionOperator" in p
        for p in problems
    ), problems
    assert any("properties.severity is int (AlertSeverity), not a string" in p for p in problems), problems
    assert len(problems) == 2, problems


def test_reads_of_resource_properties_are_checked():
    source, at = main_bicep_with(
        "appInsights.properties.ConnectionString", "appInsights.properties.connectionString"
    )
    assert only_problem(source) == (
        f"infra/main.bicep:{at}: resource appInsights (Microsoft.Insights/components): unknown property path "
        "properties.connectionString (read as appInsights.properties.connectionString); did you mean "
        "ConnectionString? (names are case-sensitive, as the SDK spells them)"
    )


def test_api_versions_older_than_the_sdk_fail_and_newer_are_notes():
    older = check_bicep(b"resource a 'Microsoft.Web/sites@2015-08-01' = {\n  name: 'a'\n}\n", "t.bicep")
    assert len(older.problems) == 1 and "API version 2015-08-01 is older than every one azure-mgmt-web" in (
        older.problems[0]
    ), older.problems
    newer = check_bicep(b"resource a 'Microsoft.Web/sites@2999-01-01' = {\n  name: 'a'\n  bad: 1\n}\n", "t.bicep")
    assert len(newer.notes) == 1 and "API version 2999-01-01 is newer than any azure-mgmt-web" in newer.notes[0]
    assert [p.split(";")[0] for p in newer.problems] == [
        "t.bicep:3: resource a (Microsoft.Web/sites): unknown property path bad"
    ], newer.problems


def test_unmapped_resource_type_fails():
    report = check_bicep(b"resource k 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'k'\n}\n", "t.bicep")
    assert report.problems == [
        "t.bicep:1: resource k (Microsoft.KeyVault/vaults): no SDK model is mapped for this type: "
        "add it to RESOURCE_MODELS"
    ]
