"""DigitalOcean-shaped API errors raised by route handlers and turned into answers by the server."""

from __future__ import annotations

_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

UNAUTHORIZED_MESSAGE = "Unable to authenticate you."
RATE_LIMIT_MESSAGE = "API Rate limit exceeded."
NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."


def error_id(status: int) -> str:
    """The DigitalOcean error ``id`` for an HTTP status."""
    return _IDS.get(status, "server_error" if status >= 500 else "bad_request")


class ApiError(Exception):
    """An error answer: status, DO error id and message; ``retry_after`` adds the header (seconds)."""

    def __init__(
        self, status: int, message: str, error: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or error_id(status)
        self.retry_after = retry_after

    @classmethod
    def not_found(cls, message: str = NOT_FOUND_MESSAGE) -> ApiError:
        """The 404 DigitalOcean answers for an unknown resource."""
        return cls(404, message, "not_found")

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        """A 400 for a malformed request."""
        return cls(400, message, "bad_request")

    @classmethod
    def unprocessable(cls, message: str) -> ApiError:
        """A 422 for a well-formed but impossible request."""
        return cls(422, message, "unprocessable_entity")
