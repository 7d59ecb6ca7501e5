"""One error tree, one exit-code table.

Every failure doops reports is a :class:`DoopsError`; the CLI's single handler turns it into the line
``doops: error: ...`` plus a hint and the exit code below (documented in docs/exit-codes.md).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    WARNING = 1  # degraded
    CRITICAL = 2  # critical, operation failed, objective missed
    UNKNOWN = 3  # could not determine: API unreachable, auth failure, timeout
    USAGE = 4  # bad input: usage error, invalid file, invalid value
    INTERRUPTED = 130


class DoopsError(Exception):
    """Base of every error doops reports to a user."""

    exit_code: ExitCode = ExitCode.CRITICAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(DoopsError):
    """The user asked for something invalid; nothing was changed."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A config or input file is missing or invalid; the message names file, line and key."""


class UnknownStateError(DoopsError):
    """doops could not find out: unreachable, timed out, not authorised."""

    exit_code = ExitCode.UNKNOWN


class AuthError(UnknownStateError):
    """No token, or the API refused it."""


class OperationFailed(DoopsError):
    """The operation ran and failed, or missed its objective."""

    exit_code = ExitCode.CRITICAL


class Interrupted(DoopsError):
    exit_code = ExitCode.INTERRUPTED


class ApiError(DoopsError):
    """DigitalOcean answered with an error; carries its ``id``, ``message`` and ``request_id``."""

    exit_code = ExitCode.CRITICAL

    def __init__(
        self,
        status: int,
        error_id: str | None,
        message: str,
        request_id: str | None = None,
        *,
        method: str = "",
        path: str = "",
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.error_id = error_id
        self.api_message = message
        self.request_id = request_id
        self.method = method
        self.path = path
        where = f"{method} {path} " if method else ""
        text = f"DigitalOcean API {where}answered {status}"
        if error_id:
            text += f" {error_id}"
        text += f": {message}"
        if request_id:
            text += f" (request_id {request_id})"
        super().__init__(text, hint=hint)


class ApiAuthError(ApiError):
    exit_code = ExitCode.UNKNOWN


class ApiNotFound(ApiError):
    exit_code = ExitCode.CRITICAL


class ApiUnavailable(ApiError):
    """5xx after retries or rate limit exhausted: the state is unknown, not failed."""

    exit_code = ExitCode.UNKNOWN


class ApiUnreachable(UnknownStateError):
    """Connection refused, DNS failure or timeout."""


def api_error_for(
    status: int,
    error_id: str | None,
    message: str,
    request_id: str | None = None,
    *,
    method: str = "",
    path: str = "",
) -> ApiError:
    """Pick the subclass by status so callers can catch what they can handle."""
    cls: type[ApiError]
    hint: str | None = None
    if status in (401, 403):
        cls = ApiAuthError
        hint = (
            "check the token: `doops auth status` shows which one is used"
            if status == 401
            else "the token lacks the scope for this call; use a token with write scope"
        )
    elif status == 404:
        cls = ApiNotFound
    elif status == 429 or status >= 500:
        cls = ApiUnavailable
        hint = "DigitalOcean is rate limiting or failing; retry later"
    else:
        cls = ApiError
    return cls(status, error_id, message, request_id, method=method, path=path, hint=hint)
