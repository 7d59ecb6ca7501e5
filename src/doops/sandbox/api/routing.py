"""What a route handler works with: the request ``Context``, its ``Response``, and the ``Router``.

Shared by the server (which matches and calls routes) and the ``routes_*`` modules (which register them), so
neither imports the other's module for these.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.state import World

MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20


@dataclass
class Response:
    """A handler's answer: status and JSON body (None = no body, e.g. 204)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    """What a handler gets: the world, path params, query, JSON body and the base URL for links."""

    world: World
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    base_url: str
    token_label: str | None

    def q(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json_body(self) -> dict[str, Any]:
        """The JSON object body, or a 400."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ApiError.bad_request("request body must be a JSON object")
        return self.body

    def paginate(self, key: str, items: list[Any]) -> dict[str, Any]:
        """DigitalOcean pagination: a page of ``items`` under ``key`` with ``links.pages`` and ``meta``."""
        page = _int_param(self.q("page"), 1, "page")
        per_page = _int_param(self.q("per_page"), DEFAULT_PER_PAGE, "per_page")
        page = max(page, 1)
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        total = len(items)
        last = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def link(n: int) -> str:
            query = {k: v for k, v in self.query.items() if k not in ("page", "per_page")}
            query["page"], query["per_page"] = [str(n)], [str(per_page)]
            return f"{self.base_url}{self.path}?{urlencode(query, doseq=True)}"

        pages: dict[str, str] = {}
        if page > 1:
            pages["first"], pages["prev"] = link(1), link(min(page - 1, last))
        if page < last:
            pages["next"], pages["last"] = link(page + 1), link(last)
        return {key: chunk, "links": {"pages": pages} if pages else {}, "meta": {"total": total}}


def _int_param(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ApiError.bad_request(f"{name} must be an integer") from exc


Handler = Callable[[Context], Response]


@dataclass(frozen=True)
class Route:
    """One served operation; ``template`` is the spec's path template (so tests can look it up)."""

    method: str
    template: str
    handler: Handler
    paginated: bool = False
    regex: re.Pattern[str] = field(compare=False, default=re.compile(""))


class Router:
    """Method + path-template routing; literal segments win over parameters."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, paginated: bool = False) -> None:
        """Register a route (template segments ``{name}`` match one path segment)."""
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        self._routes.append(Route(method.upper(), template, handler, paginated, re.compile(pattern)))
        # literal-heavy templates first so /v2/apps/{app_id}/rollback/commit beats looser ones
        self._routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))

    def routes(self) -> list[Route]:
        """Every registered route."""
        return list(self._routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for a request, or 404 / 405."""
        path_matched = False
        for r in self._routes:
            m = r.regex.match(path)
            if m is None:
                continue
            path_matched = True
            if r.method == method:
                return r, m.groupdict()
        if path_matched:
            raise ApiError(405, f"method {method} not allowed on {path}", "method_not_allowed")
        raise ApiError.not_found()
