"""An azure-core transport that sends pydo's requests through :class:`ResilientHttp` (httpx).

Why: pydo's default transport is requests, which neither respx nor our rate-limit pacing can see. With
this transport every DigitalOcean call goes through one httpx client: unit tests mock it with respx,
integration tests hit the sandbox twin, and --debug traces it with secrets masked.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict

from doops.clients.http import ResilientHttp


class _Response(HttpResponseImpl):
    """A fully-read response: DigitalOcean answers are small JSON documents."""

    def __init__(self, request: Any, resp: Any) -> None:
        headers = case_insensitive_dict(resp.headers.items())
        super().__init__(
            request=request,
            internal_response=resp,
            status_code=resp.status_code,
            reason=resp.reason_phrase,
            content_type=headers.get("content-type"),
            headers=headers,
            stream_download_generator=None,
        )
        self._content = resp.content
        self._is_stream_consumed = True

    def read(self) -> bytes:
        return self._content or b""

    def iter_bytes(self, **kwargs: Any) -> Any:
        yield self.read()

    def iter_raw(self, **kwargs: Any) -> Any:
        yield self.read()


class HttpxTransport(HttpTransport):
    def __init__(self, http: ResilientHttp) -> None:
        self.http = http

    def __enter__(self) -> HttpxTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: Any, **kwargs: Any) -> _Response:
        content = getattr(request, "content", None)
        if content is None:
            content = getattr(request, "data", None) or getattr(request, "body", None)
        if isinstance(content, str):
            content = content.encode("utf-8")
        headers = {str(k): str(v) for k, v in request.headers.items()}
        resp = self.http.send(request.method, request.url, headers, content)
        return _Response(request, resp)
