"""Every route jupyter-repro registers refuses requests without credentials and honours the
server's Authorizer.

The routes are read from the live server's routing table (every pattern under
`{base_url}repro/`), so a route added later is covered without touching this file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from jupyter_server.auth import Authorizer
from tornado import web
from tornado.routing import PathMatches, Router

from jupyter_repro.handlers import AUTH_RESOURCE

# Methods a handler may implement; RequestHandler's defaults answer 405 and are not routes.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Values for the path groups of a route, in order: a name, a notebook path, an id.
SAMPLE_GROUPS = ("x", "nb.ipynb", "base")


@dataclass(frozen=True)
class Route:
    pattern: str  # the route's regular expression, base_url included
    handler: type[web.RequestHandler]
    groups: int

    def url(self, *values: str) -> str:
        """A concrete path: the groups filled with `values` (default: sample values), encoded."""
        args = list(values) or [SAMPLE_GROUPS[i % len(SAMPLE_GROUPS)] for i in range(self.groups)]
        assert len(args) == self.groups, (self.pattern, args)
        parts = split_groups(self.pattern.removesuffix("$"))
        path = ""
        for index, part in enumerate(parts):
            if index % 2 == 0:
                path += re.sub(r"\\(.)", r"\1", part)  # a literal: drop regex escapes
            else:
                # Keep slashes only where the group matches them (notebook paths).
                slashes = re.fullmatch(part, "a/b") is not None
                path += quote(args[index // 2], safe="/" if slashes else "")
        assert re.match(self.pattern, path), (self.pattern, path)
        return path

    @property
    def methods(self) -> list[str]:
        """The HTTP methods the handler itself implements (not inherited from tornado)."""
        return [m for m in METHODS if implements(self.handler, m.lower())]


def split_groups(pattern: str) -> list[str]:
    """`literal, group, literal, group, ...` of a route regex (top-level groups only)."""
    parts, current, depth, escaped, in_class = [], "", 0, False, False
    for char in pattern:
        if escaped:
            current += char
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "(" and not in_class:
            depth += 1
            if depth == 1:
                parts.append(current)
                current = ""
                continue
        elif char == ")" and not in_class:
            depth -= 1
            if depth == 0:
                parts.append(current)
                current = ""
                continue
        current += char
    parts.append(current)
    return parts


def implements(handler: type, method: str) -> bool:
    return any(
        method in vars(klass)
        for klass in handler.__mro__
        if klass.__module__.startswith("jupyter_repro")
    )


def _walk(router: Any) -> list[tuple[str, Any]]:
    rules: list[tuple[str, Any]] = []
    for rule in getattr(router, "rules", []):
        if isinstance(rule.target, Router) or hasattr(rule.target, "rules"):
            rules.extend(_walk(rule.target))
        elif isinstance(rule.matcher, PathMatches):
            rules.append((rule.matcher.regex.pattern, rule.target))
    return rules


def extension_routes(serverapp: Any) -> list[Route]:
    """Every route of the live server under `{base_url}repro/` (and any jupyter_repro handler)."""
    prefix = serverapp.base_url + "repro/"
    routes = []
    seen = set()
    app = serverapp.web_app
    for pattern, target in _walk(app.wildcard_router) + _walk(app.default_router):
        if not isinstance(target, type):
            continue
        ours = target.__module__.startswith("jupyter_repro")
        if not (pattern.startswith(prefix) or ours) or pattern in seen:
            continue
        seen.add(pattern)
        routes.append(Route(pattern, target, PathMatches(pattern).regex.groups))
    return routes


def route_cases(serverapp: Any) -> list[tuple[Route, str]]:
    return [(route, method) for route in extension_routes(serverapp) for method in route.methods]


async def fetch(client: Any, url: str, method: str, headers: dict[str, str] | None = None):
    body = (
        json.dumps({"source": {"content": ""}, "dry_run": True})
        if method
        in (
            "POST",
            "PUT",
            "PATCH",
        )
        else None
    )
    return await client.fetch(
        url,
        method=method,
        body=body,
        headers=headers or {},
        raise_error=False,
        follow_redirects=False,
        allow_nonstandard_methods=True,
    )


def test_the_extension_registers_its_routes(jp_serverapp):
    patterns = [route.pattern for route in extension_routes(jp_serverapp)]

    base = jp_serverapp.base_url + "repro/"
    for expected in ("status", "environments", "restore", "jobs/", "openapi.json"):
        assert any(p.startswith(base + expected) for p in patterns), (expected, patterns)
    assert all(route.methods for route in extension_routes(jp_serverapp))


def test_every_handler_checks_the_repro_resource(jp_serverapp):
    for route in extension_routes(jp_serverapp):
        assert getattr(route.handler, "auth_resource", None) == AUTH_RESOURCE, route


async def test_every_route_refuses_requests_without_credentials(jp_serverapp, http_server_client):
    cases = route_cases(jp_serverapp)
    assert cases

    answers = {}
    for route, method in cases:
        response = await fetch(http_server_client, route.url(), method)
        answers[(route.pattern, method)] = response.code
        assert response.headers.get("Content-Type", "").startswith("application/json")
        body = json.loads(response.body)
        assert set(body) <= {"message", "reason", "traceback"}, (route.pattern, method, body)

    assert set(answers.values()) == {403}, answers


async def test_every_route_refuses_a_wrong_token(jp_serverapp, http_server_client):
    for route, method in route_cases(jp_serverapp):
        response = await fetch(
            http_server_client, route.url(), method, {"Authorization": "token not-the-token"}
        )
        assert response.code == 403, (route.pattern, method, response.code)


class DenyRepro(Authorizer):
    """Allows everything but jupyter-repro's resource."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != AUTH_RESOURCE


class TestRestrictiveAuthorizer:
    @pytest.fixture
    def jp_server_config(self):
        return {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_repro": True},
                "allow_unauthenticated_access": False,
                "authorizer_class": DenyRepro,
            }
        }

    async def test_every_route_is_denied(self, jp_serverapp, http_server_client, jp_auth_header):
        cases = route_cases(jp_serverapp)
        assert cases

        answers = {}
        for route, method in cases:
            response = await fetch(http_server_client, route.url(), method, jp_auth_header)
            answers[(route.pattern, method)] = response.code
        assert set(answers.values()) == {403}, answers

    async def test_the_authorizer_denies_only_repro(self, jp_fetch):
        # The same credentials reach the server's own API: the 403s above come from the
        # authorizer's verdict on resource "repro", not from broken credentials.
        response = await jp_fetch("api", "kernelspecs")
        assert response.code == 200


class TestPermissiveAuthorizer:
    """The counter-check: with credentials and the default authorizer no route answers 403."""

    async def test_no_route_is_denied(self, jp_serverapp, http_server_client, jp_auth_header):
        answers = {}
        for route, method in route_cases(jp_serverapp):
            if method == "POST":
                continue  # bodies are route-specific; the fuzz test covers them
            response = await fetch(http_server_client, route.url(), method, jp_auth_header)
            answers[(route.pattern, method)] = response.code
        assert answers
        assert 403 not in answers.values(), answers
