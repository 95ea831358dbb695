"""Comparing the API the code serves with the reference contract.

Both OpenAPI documents are reduced to a *digest*: per operation, the request
fields (types, enums, required), the status codes, and for each response the
shape, required fields and enums. Prose is dropped. ``compare`` then lists
every way a served operation departs from the reference, and which reference
operations are not served yet.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

METHODS = ("get", "post", "put", "patch", "delete")


class _Resolver:
    def __init__(self, document: dict, base_dir: Path | None):
        self.document = document
        self.base_dir = base_dir

    def resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            seen += 1
            if seen > 20:
                raise ValueError("reference cycle")
            node = self._lookup(node["$ref"])
        return node

    def _lookup(self, ref: str):
        if ref.startswith("#/"):
            target = self.document
            for part in ref[2:].split("/"):
                target = target[part]
            return target
        if self.base_dir is None:
            raise ValueError(f"external reference {ref} without a base directory")
        # The reference points its Error schema at ./schemas/error.json; the file
        # sits beside the contract as seed-error.schema.json.
        name = Path(ref).name
        for candidate in (self.base_dir / ref, self.base_dir / f"seed-{Path(name).stem}.schema.json"):
            if candidate.exists():
                return json.loads(candidate.read_text())
        raise FileNotFoundError(ref)


def _types(schema: dict) -> list[str]:
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _types(schema["allOf"][0])
    kind = schema.get("type")
    if kind is None:
        return []
    return sorted(kind) if isinstance(kind, list) else [kind]


def _field(schema: dict, resolver: _Resolver) -> dict:
    schema = resolver.resolve(schema)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        merged = dict(resolver.resolve(schema["allOf"][0]))
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        schema = merged
    if "oneOf" in schema:  # nullable enum: oneOf [enum, null]
        parts = [resolver.resolve(part) for part in schema["oneOf"]]
        enum = sorted({value for part in parts for value in part.get("enum", []) if value is not None})
        types = sorted({t for part in parts for t in _types(part)})
        return {"type": types, "enum": enum or None}
    enum = schema.get("enum")
    return {
        "type": _types(schema),
        "enum": sorted(value for value in enum if value is not None) if enum else None,
    }


def _object(schema: dict, resolver: _Resolver) -> dict:
    schema = resolver.resolve(schema)
    if schema.get("type") == "array":
        item = _object(schema.get("items", {}), resolver)
        return {"kind": "array", "item": item}
    properties = schema.get("properties", {})
    return {
        "kind": "object",
        "required": sorted(schema.get("required", [])),
        "properties": {name: _field(prop, resolver) for name, prop in sorted(properties.items())},
        "closed": schema.get("additionalProperties") is False,
    }


def digest(document: dict, base_dir: Path | None = None) -> dict:
    resolver = _Resolver(document, base_dir)
    operations = {}
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            entry = {"operation_id": operation.get("operationId"), "request": None, "responses": {}}
            body = operation.get("requestBody")
            if body:
                schema = body.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    entry["request"] = _object(schema, resolver)
            for status, response in operation.get("responses", {}).items():
                response = resolver.resolve(response)
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                entry["responses"][str(status)] = _object(schema, resolver) if schema else None
            operations[f"{method.upper()} {path}"] = entry
    return operations


def load_document(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def compare(reference: dict, served: dict) -> tuple[list[str], list[str], list[str]]:
    """Return (problems, served operation keys, reference operations not served)."""
    problems: list[str] = []
    served_keys, missing = [], []
    for key, ref in sorted(reference.items()):
        ours = served.get(key)
        if ours is None:
            missing.append(key)
            continue
        served_keys.append(key)
        if ref["operation_id"] and ours["operation_id"] != ref["operation_id"]:
            problems.append(f"{key}: operationId {ours['operation_id']} != {ref['operation_id']}")
        problems += _compare_request(key, ref["request"], ours["request"])
        for status, ref_body in ref["responses"].items():
            if status not in ours["responses"]:
                problems.append(f"{key}: status {status} of the reference is not declared")
                continue
            problems += _compare_body(f"{key} -> {status}", ref_body, ours["responses"][status])
    return problems, served_keys, missing


def _compare_request(key, ref, ours) -> list[str]:
    if ref is None:
        return [f"{key}: takes a request body the reference does not have"] if ours and ours.get("required") else []
    if ours is None:
        return [f"{key}: request body missing"]
    problems = []
    if ref["required"] != ours["required"]:
        problems.append(f"{key}: request required fields {ours['required']} != {ref['required']}")
    for name, field in ref["properties"].items():
        mine = ours["properties"].get(name)
        if mine is None:
            problems.append(f"{key}: request field {name} missing")
            continue
        problems += _compare_field(f"{key}: request field {name}", field, mine)
    return problems


def _compare_body(where, ref, ours) -> list[str]:
    if ref is None:
        return []
    if ours is None:
        return [f"{where}: response body missing"]
    if ref["kind"] != ours["kind"]:
        return [f"{where}: response is {ours['kind']}, reference says {ref['kind']}"]
    if ref["kind"] == "array":
        return _compare_body(f"{where}[]", ref["item"], ours["item"])
    problems = []
    missing_required = sorted(set(ref["required"]) - set(ours["required"]))
    if missing_required:
        problems.append(f"{where}: fields not guaranteed: {missing_required}")
    if ref["closed"]:
        extra = sorted(set(ours["properties"]) - set(ref["properties"]))
        if extra:
            problems.append(f"{where}: fields the reference does not allow: {extra}")
    for name, field in ref["properties"].items():
        mine = ours["properties"].get(name)
        if mine is None:
            if name in ref["required"]:
                problems.append(f"{where}: field {name} missing")
            continue
        problems += _compare_field(f"{where}: field {name}", field, mine)
    return problems


def _compare_field(where, ref, ours) -> list[str]:
    problems = []
    if ref["enum"] != ours["enum"]:
        problems.append(f"{where}: enum {ours['enum']} != {ref['enum']}")
    if ref["type"] and ours["type"] and set(ref["type"]) != set(ours["type"]):
        problems.append(f"{where}: type {ours['type']} != {ref['type']}")
    return problems
