"""The OpenAPI document served at `repro/openapi.json`: valid, complete, and true.

"True" is checked by a bounded fuzz test: seeded random requests (hostile paths, random
queries, well-formed and malformed bodies) against a live server whose HOME is a rig
installation; every answer must be documented for its operation and match its schema.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.rig.installation import CondaInstallation
from tests.test_route_security import Route, extension_routes

OPERATIONS = ("get", "put", "post", "delete", "patch")
DOCUMENT_URI = "urn:jupyter-repro:openapi"

# The structure this project relies on; a small meta-check instead of a heavy validator.
RESPONSE = {
    "type": "object",
    "required": ["description"],
    "properties": {
        "description": {"type": "string"},
        "headers": {"type": "object"},
        "content": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["schema"],
                "properties": {"schema": {"type": ["object", "boolean"]}},
            },
        },
    },
    "additionalProperties": False,
}
PARAMETER = {
    "type": "object",
    "required": ["name", "in", "schema"],
    "properties": {
        "name": {"type": "string"},
        "in": {"enum": ["path", "query", "header", "cookie"]},
        "required": {"type": "boolean"},
        "description": {"type": "string"},
        "schema": {"type": ["object", "boolean"]},
    },
    "if": {"properties": {"in": {"const": "path"}}},
    "then": {"required": ["required"], "properties": {"required": {"const": True}}},
}
OPERATION = {
    "type": "object",
    "required": ["operationId", "summary", "responses", "security"],
    "properties": {
        "operationId": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
        "summary": {"type": "string"},
        "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "parameters": {"type": "array", "items": PARAMETER},
        "requestBody": {
            "type": "object",
            "required": ["content"],
            "properties": {"required": {"type": "boolean"}, "content": {"type": "object"}},
        },
        "responses": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[1-5][0-9][0-9]$"},
            "additionalProperties": RESPONSE,
        },
        "security": {"type": "array", "minItems": 1},
    },
    "additionalProperties": False,
}
META = {
    "type": "object",
    "required": ["openapi", "info", "paths", "components", "servers", "security"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.[01]\.\d+$"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {"title": {"type": "string"}, "version": {"type": "string"}},
        },
        "servers": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "required": ["url"]},
        },
        "security": {"type": "array", "minItems": 1},
        "paths": {
            "type": "object",
            "propertyNames": {"pattern": "^/"},
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "parameters": {"type": "array", "items": PARAMETER},
                    **dict.fromkeys(OPERATIONS, OPERATION),
                },
                "additionalProperties": False,
            },
        },
        "components": {
            "type": "object",
            "required": ["securitySchemes", "schemas"],
            "properties": {
                "schemas": {"type": "object"},
                "securitySchemes": {
                    "type": "object",
                    "required": ["jupyterToken"],
                    "properties": {
                        "jupyterToken": {
                            "const": {
                                "type": "apiKey",
                                "in": "header",
                                "name": "Authorization",
                                "description": "The server's token as "
                                "`Authorization: token <token>`.",
                            }
                        }
                    },
                },
            },
        },
    },
}


def shipped_document() -> dict[str, Any]:
    text = resources.files("jupyter_repro").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


async def served_document(jp_fetch) -> dict[str, Any]:
    response = await jp_fetch("repro", "openapi.json")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document: dict[str, Any] = json.loads(response.body)
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in OPERATIONS
    ]


def path_parameters(document: dict[str, Any], path: str, method: str) -> list[dict[str, Any]]:
    item = document["paths"][path]
    params = item.get("parameters", []) + item[method].get("parameters", [])
    return [p for p in params if p["in"] == "path"]


def template_regex(base: str, template: str) -> str:
    """The URLs a documented path stands for: `{path}` may hold slashes, other params not."""
    regex = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        regex += re.escape(literal)
        if name:
            regex += "(.+)" if name == "path" else "([^/]+)"
    return re.escape(base.rstrip("/")) + regex


def matching_route(routes: list[Route], base: str, template: str) -> Route | None:
    """The registered route a documented path describes: each one's sample URL fits the other."""
    regex = template_regex(base, template)
    for route in routes:
        sample = re.sub(r"\{\w+\}", "x", template)
        if re.fullmatch(regex, route.url()) and re.match(route.pattern, base.rstrip("/") + sample):
            return route
    return None


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    wrapped = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    wrapped["$id"] = DOCUMENT_URI + "/inline"
    # `#/components/...` inside the document's schemas resolve against the document.
    text = json.dumps(wrapped).replace('"$ref": "#/', f'"$ref": "{DOCUMENT_URI}#/')
    return Draft202012Validator(json.loads(text), registry=registry)


# ---------------------------------------------------------------------------------------------
# the document


async def test_the_served_document_is_valid_openapi(jp_fetch, jp_base_url):
    document = await served_document(jp_fetch)

    Draft202012Validator(META).validate(document)
    assert document["servers"][0]["url"] == jp_base_url + "repro"
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        validator(document, schema)  # every $ref resolves
        assert name.isidentifier()
    ids = [document["paths"][p][m]["operationId"] for p, m in operations(document)]
    assert len(ids) == len(set(ids))
    for path, method in operations(document):
        declared = {p["name"] for p in path_parameters(document, path, method)}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, method)
        operation = document["paths"][path][method]
        assert operation["security"] == [{"jupyterToken": []}]
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
            for content in response.get("content", {}).values():
                validator(document, content["schema"]).check_schema(content["schema"])
        assert "403" in operation["responses"], (path, method)


async def test_the_served_document_is_the_shipped_one(jp_fetch):
    served = await served_document(jp_fetch)
    shipped = shipped_document()

    assert {k: v for k, v in served.items() if k != "servers"} == {
        k: v for k, v in shipped.items() if k != "servers"
    }


def test_the_document_ships_in_the_wheel():
    wheel = pytest.importorskip("hatchling.builders.wheel")
    root = Path(__file__).resolve().parent.parent
    files = {f.distribution_path for f in wheel.WheelBuilder(str(root)).recurse_included_files()}

    assert "jupyter_repro/openapi.json" in files


async def test_its_own_answer_matches_its_schema(jp_fetch):
    document = await served_document(jp_fetch)
    responses = document["paths"]["/openapi.json"]["get"]["responses"]
    validator(document, responses["200"]["content"]["application/json"]["schema"]).validate(
        document
    )


async def test_every_registered_route_is_documented(jp_serverapp, jp_fetch):
    document = await served_document(jp_fetch)
    base = jp_serverapp.base_url + "repro"
    routes = extension_routes(jp_serverapp)

    undocumented = []
    for route in routes:
        templates = [t for t in document["paths"] if matching_route([route], base, t)]
        if len(templates) != 1:
            undocumented.append((route.pattern, templates))
            continue
        documented = {m for m in document["paths"][templates[0]] if m in OPERATIONS}
        assert documented == {m.lower() for m in route.methods}, (route.pattern, documented)
        assert (
            len(
                path_parameters(
                    document, templates[0], "get" if "get" in documented else next(iter(documented))
                )
            )
            == route.groups
        )
    assert undocumented == []


async def test_every_documented_route_is_registered(jp_serverapp, jp_fetch):
    document = await served_document(jp_fetch)
    base = jp_serverapp.base_url + "repro"
    routes = extension_routes(jp_serverapp)

    missing = [
        (path, method)
        for path, method in operations(document)
        if matching_route(routes, base, path) is None
    ]
    assert missing == []


# ---------------------------------------------------------------------------------------------
# the fuzz test

SEED = int(os.environ.get("REPRO_FUZZ_SEED", "20261124"))  # another seed: another run
REQUESTS = 300
TIME_BUDGET = 150.0  # seconds; the test stops sending (and says how many it sent) after that

HOSTILE = (
    "..",
    "../..",
    "../../etc/passwd",
    "%2E%2E",
    "%2e%2e/%2e%2e",
    "..%2F..%2Fetc",
    "/etc/passwd",
    "//etc/passwd",
    "\\..\\..\\windows",
    "C:\\Windows",
    ".hidden.ipynb",
    "folder/.hidden/nb.ipynb",
    "escape.ipynb",
    "escape/nb.ipynb",
    "nb.ipynb",
    "folder/nb.ipynb",
    "not-json.ipynb",
    "not-a-notebook.txt",
    "folder",
    "ünïcødé ☃.ipynb",
    "\u202e\u0000.ipynb",
    "nb.ipynb\x00.txt",
    "a" * 4000,
    "a/" * 300 + "nb.ipynb",
    "base",
    "py311",
    "environment.yml",
    " ",
    "~",
    "$HOME",
    "nb.ipynb?x=1#y",
    "%",
    "%ZZ",
    "%FF%FE",
)
QUERY_VALUES = ("portable", "exact", "no-builds", "yaml", "explicit", "json", "", "x", "..", "ü")


@dataclass
class Sent:
    method: str
    url: str
    body: bytes | None
    status: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        body = self.body[:300] if self.body is not None else None
        return f"{self.method} {self.url[:300]} body={body!r} -> {self.status}"


def random_text(rng: random.Random) -> str:
    alphabet = "abcxyz019./\\%-_ ~:?#&=ü☃\u202e\x00\n"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 1, 2**63, -(2**70)])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e-9])
    if kind == "str":
        return rng.choice([random_text(rng), rng.choice(HOSTILE)])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["source", "name", "prefix", "dry_run", "mode", "target", "filename", "explicit"]
    return {
        rng.choice([*keys, random_text(rng)]): random_json(rng, depth + 1)
        for _ in range(rng.randint(0, 4))
    }


def spec_text(rng: random.Random, channel_url: str) -> str:
    return rng.choice(
        [
            "",
            "dependencies: [",
            "name: x\ndependencies:\n  - python\n",
            f"channels:\n  - {channel_url}\ndependencies:\n  - pkgc\n",
            f"channels:\n  - {channel_url}\ndependencies:\n  - pkga\n  - pkgb=1.0\n",
            f"channels:\n  - {channel_url}\ndependencies:\n  - pkgc\n",
            "channels:\n  - https://example.invalid/forbidden\ndependencies:\n  - python\n",
            "dependencies:\n  - pip:\n    - git+https://example.invalid/x.git\n",
            "dependencies:\n  - nonexistent-package-zzz\n",
            random_text(rng),
            "@EXPLICIT\nhttps://example.invalid/x-1-0.conda\n",
        ]
    )


def restore_body(rng: random.Random, channel_url: str) -> Any:
    """Mostly invalid; the valid ones are dry runs, so the fuzz never builds an environment."""
    choice = rng.random()
    if choice < 0.3:
        return random_json(rng)
    kind = rng.choice(["notebook", "file", "content", "content", "content", "other"])
    value: Any = spec_text(rng, channel_url) if kind == "content" else path_value(rng)
    if rng.random() < 0.1:
        value = random_json(rng)
    body: dict[str, Any] = {"source": {kind: value}}
    for key, values in (
        ("name", [None, "fuzzed", "", "../x", "/abs", "base", "py", 5, random_text(rng)]),
        ("prefix", [None, "relative/x", "/tmp/../etc", 5]),
    ):
        if rng.random() < 0.25:
            body[key] = rng.choice(values)
    if kind == "content" and "name" not in body and rng.random() < 0.7:
        body["name"] = rng.choice(["fuzzed", "py"])
    body["dry_run"] = True if rng.random() < 0.9 else rng.choice([1, "yes", None])
    if rng.random() < 0.1:
        body[random_text(rng)] = 1
    return body


FILENAMES = ("env.yml", "x.yaml", "../x.yml", "/tmp/x.yml", ".hidden.yml", "a/b.yml", ".yml", 7)


def write_body(rng: random.Random) -> Any:
    if rng.random() < 0.15:
        return random_json(rng)
    body: dict[str, Any] = {}
    if rng.random() < 0.9:
        body["target"] = rng.choice(["file", "metadata", "both"] * 3 + ["nope", 1, None])
    if rng.random() < 0.5:
        body["mode"] = rng.choice(["portable", "exact", "no-builds", "bogus", 3])
    if rng.random() < 0.5:
        body["filename"] = rng.choice([*FILENAMES, random_text(rng) + ".yml"])
    if rng.random() < 0.3:
        body["explicit"] = rng.choice([True, False, "true"])
    return body


def verify_body(rng: random.Random) -> Any:
    """Mostly invalid; a valid one starts a job on a notebook without cells (cancelled at
    once by the fuzz loop)."""
    if rng.random() < 0.2:
        return random_json(rng)
    body: dict[str, Any] = {}
    if rng.random() < 0.9:
        body["notebook"] = rng.choice([path_value(rng), 5, None, ""])
    for key, values in (
        ("restore", [True, False, "yes", None, 1]),
        ("timeout", [1, 0.5, 0, -1, "5", None, True, 1e308]),
        ("kernel", ["conda-env-py-py", "python3", "nope", "", "a\x00b", 7, None]),
    ):
        if rng.random() < 0.3:
            body[key] = rng.choice(values)
    if rng.random() < 0.1:
        body[random_text(rng)] = 1
    return body


def pack_body(rng: random.Random) -> Any:
    """Mostly invalid; a valid one starts a pack job (cancelled at once by the fuzz loop)."""
    if rng.random() < 0.2:
        return random_json(rng)
    body: dict[str, Any] = {}
    choice = rng.random()
    if choice < 0.45:
        body["notebooks"] = rng.choice(
            [[path_value(rng)], [path_value(rng), path_value(rng)], [], "nb.ipynb", [5], None]
        )
    elif choice < 0.9:
        body["environment"] = rng.choice([path_value(rng, "name"), "", 3, None])
    if rng.random() < 0.3:
        body["notebooks" if "environment" in body else "environment"] = "py"
    if rng.random() < 0.4:
        body["platforms"] = rng.choice(
            [["linux-64"], ["linux-64", "osx-arm64"], ["noarch"], ["beos-68k"], "linux-64", []]
        )
    if rng.random() < 0.3:
        body["format"] = rng.choice(["capsule", "conda-pack", "zip", 1, None])
    if rng.random() < 0.1:
        body[random_text(rng)] = 1
    return body


# Values that exist in the fuzz server's root and rig installation, by parameter.
PLAUSIBLE = {
    "path": ("nb.ipynb", "folder/nb.ipynb", "embedded.ipynb", "environment.yml"),
    "name": ("base", "py", "r", "old", "nokernel", "demo"),
}


def path_value(rng: random.Random, parameter: str = "path") -> str:
    choice = rng.random()
    if choice < 0.4:
        return rng.choice(PLAUSIBLE.get(parameter, PLAUSIBLE["name"]))
    return rng.choice(HOSTILE) if choice < 0.85 else random_text(rng)


def encode(rng: random.Random, value: str, slashes: bool) -> str:
    """Percent-encode a path value; sometimes leave URL-safe ASCII as typed (raw `%2E%2E`)."""
    if rng.random() < 0.2 and re.fullmatch(r"[A-Za-z0-9._~%/-]+", value):
        return value if slashes else value.replace("/", "%2F")
    return quote(value, safe="/" if slashes else "")


def fill(rng: random.Random, template: str, route: Route) -> str:
    parts = re.split(r"\{(\w+)\}", template)
    url = ""
    for index, part in enumerate(parts):
        url += part if index % 2 == 0 else encode(rng, path_value(rng, part), part == "path")
    return url


@pytest.fixture
def fuzz_installation(conda_installation_factory) -> CondaInstallation:
    return conda_installation_factory(standard_envs=True)


class TestFuzz:
    @pytest.fixture
    def jp_home_dir(self, fuzz_installation: CondaInstallation) -> Path:
        return fuzz_installation.home

    @pytest.fixture
    def server_root(self, jp_root_dir: Path, tmp_path_factory) -> Path:
        """Notebooks, hidden files, non-notebooks and symlinks out of the root."""
        outside = tmp_path_factory.mktemp("outside")
        (outside / "secret.ipynb").write_text(json.dumps(notebook("python3")))
        (outside / "environment.yml").write_text("dependencies: [python]\n")
        (jp_root_dir / "nb.ipynb").write_text(json.dumps(notebook("conda-env-py-py")))
        embedded = notebook("conda-env-gone-py")
        embedded["metadata"]["jupyter_repro"] = {
            "environment": {"name": "gone", "dependencies": ["python", "pkgc"]}
        }
        (jp_root_dir / "embedded.ipynb").write_text(json.dumps(embedded))
        (jp_root_dir / "folder").mkdir()
        (jp_root_dir / "folder" / "nb.ipynb").write_text(json.dumps(notebook("missing-kernel")))
        (jp_root_dir / "folder" / ".hidden").mkdir()
        (jp_root_dir / "folder" / ".hidden" / "nb.ipynb").write_text(json.dumps(notebook("x")))
        (jp_root_dir / ".hidden.ipynb").write_text(json.dumps(notebook("python3")))
        (jp_root_dir / "not-json.ipynb").write_text("{not json")
        (jp_root_dir / "not-a-notebook.txt").write_text("hello")
        (jp_root_dir / "environment.yml").write_text("dependencies:\n  - python\n")
        (jp_root_dir / "escape.ipynb").symlink_to(outside / "secret.ipynb")
        (jp_root_dir / "escape").symlink_to(outside)
        return jp_root_dir

    async def test_random_requests_get_documented_answers(
        self, jp_serverapp, jp_fetch, http_server_client, jp_auth_header, server_root, rig_channel
    ):
        document = await served_document(jp_fetch)
        base = jp_serverapp.base_url + "repro"
        routes = extension_routes(jp_serverapp)
        targets = []
        for path, method in operations(document):
            route = matching_route(routes, base, path)
            assert route is not None, f"documented but not served: {method} {path}"
            targets.append((path, method, route))
        rng = random.Random(SEED)
        sent: list[Sent] = []
        deadline = time.monotonic() + TIME_BUDGET

        # First every operation with raw path values (undecodable, dot-dot, encoded dot-dot),
        # then random requests.
        raw = ["%FF%FE", "..", "%2E%2E", "%2e%2e%2F%2e%2e", "%00"]
        plan = [(t, value) for t in targets if "{" in t[0] for value in raw]
        plan += [(targets[n % len(targets)], None) for n in range(REQUESTS - len(plan))]
        for (path, method, route), raw_value in plan:
            if time.monotonic() > deadline:
                break
            operation = document["paths"][path][method]
            if raw_value is None:
                url = base + fill(rng, path, route)
            else:
                url = base + re.sub(r"\{\w+\}", raw_value, path)
            if not re.match(route.pattern, url.split("?")[0]):
                continue  # e.g. a value tornado would route elsewhere: not this operation
            query = {}
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and rng.random() < 0.7:
                    query[parameter["name"]] = rng.choice(QUERY_VALUES)
            if rng.random() < 0.1:
                query[random_text(rng)] = random_text(rng)
            if query:
                url += "?" + urlencode(query)
            body: bytes | None = None
            if method in ("post", "put", "patch"):
                if rng.random() < 0.15:
                    body = rng.choice([b"", b"{", b"\xff\xfe", b"[]", b"null", b'{"a":'])
                elif path == "/restore":
                    body = json.dumps(restore_body(rng, rig_channel.url)).encode()
                elif path == "/verify":
                    body = json.dumps(verify_body(rng)).encode()
                elif path == "/pack":
                    body = json.dumps(pack_body(rng)).encode()
                else:
                    body = json.dumps(write_body(rng)).encode()
            request = Sent(method.upper(), url, body)
            response = await http_server_client.fetch(
                url,
                method=request.method,
                body=body,
                headers=dict(jp_auth_header, **{"Content-Type": "application/json"}),
                raise_error=False,
                follow_redirects=False,
                allow_nonstandard_methods=True,
                request_timeout=120,
            )
            request.status = response.code
            request.problems = check_response(document, operation, response)
            sent.append(request)
            if response.code == 202 and "Location" in response.headers:
                # Never let a fuzzed restore run: cancel whatever started.
                await http_server_client.fetch(
                    response.headers["Location"],
                    method="DELETE",
                    headers=jp_auth_header,
                    raise_error=False,
                )

        summary: dict[str, dict[int, int]] = {}
        for request in sent:
            key = f"{request.method} {request.url.split('/repro/')[1].split('/')[0].split('?')[0]}"
            counts = summary.setdefault(key, {})
            counts[request.status] = counts.get(request.status, 0) + 1
        print(f"fuzz: {len(sent)} requests, seed {SEED}:", json.dumps(summary, sort_keys=True))
        failures = [f"{r}: {'; '.join(r.problems)}" for r in sent if r.problems]
        assert not failures, "\n".join(failures)
        assert len(sent) >= min(REQUESTS, 100), f"only {len(sent)} requests in the time budget"
        statuses = {r.status for r in sent}
        assert statuses & {200, 202}, "the fuzz never got a success: it tests too little"
        assert statuses & {400, 403, 404}


def notebook(kernel: str) -> dict[str, Any]:
    return {
        "cells": [],
        "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def check_response(document: dict[str, Any], operation: dict[str, Any], response) -> list[str]:
    """What is wrong with an answer: undocumented status, media type, header or body."""
    problems = []
    if response.code >= 500 or response.code < 200:
        problems.append(f"server error {response.code}: {response.body[:500]!r}")
    documented = operation["responses"].get(str(response.code))
    if documented is None:
        return [*problems, f"status {response.code} is not documented: {response.body[:300]!r}"]
    for name, header in documented.get("headers", {}).items():
        if header.get("required") and name not in response.headers:
            problems.append(f"header {name} missing")
    content = documented.get("content", {})
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if media_type not in content:
        return [*problems, f"Content-Type {media_type!r} not documented ({sorted(content)})"]
    if media_type == "application/json":
        try:
            body = json.loads(response.body)
        except ValueError as error:
            return [*problems, f"body is not JSON: {error}"]
        errors = list(validator(document, content[media_type]["schema"]).iter_errors(body))
        problems += [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:3]]
    elif media_type == "text/yaml":
        # Its schema is that of the parsed document (as schemathesis reads it).
        try:
            parsed = yaml.safe_load(response.body)
        except yaml.YAMLError as error:
            return [*problems, f"body is not YAML: {error}"]
        errors = list(validator(document, content[media_type]["schema"]).iter_errors(parsed))
        problems += [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:3]]
    else:
        try:
            response.body.decode("utf-8")
        except UnicodeDecodeError:
            problems.append("text body is not UTF-8")
    return problems
