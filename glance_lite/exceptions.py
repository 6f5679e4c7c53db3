"""Domain errors. Code below the WSGI edge raises these; wsgi.py translates them once.

The registry client runs the same table backwards (status -> class), so the api sees
the registry's errors as the same exceptions.
"""


class GlanceLiteError(Exception):
    status = 500
    message = "An unknown exception occurred"
    # Seconds a client should wait before trying again: sent as Retry-After when set.
    retry_after: int | None = None
    # A peer's explanation without its error page's status line (the registry client)
    detail: str | None = None

    def __init__(self, message: str | None = None):
        super().__init__(message if message is not None else self.message)


class Invalid(GlanceLiteError):
    status = 400
    message = "Data supplied was not valid."


class NotAuthenticated(GlanceLiteError):
    status = 401
    message = "You are not authenticated."


class Forbidden(GlanceLiteError):
    status = 403
    message = "You are not authorized to complete this action."


class NotFound(GlanceLiteError):
    status = 404
    message = "An object with the specified identifier was not found."


class Conflict(GlanceLiteError):
    status = 409
    message = "An object with the same identifier already exists."


class PreconditionFailed(GlanceLiteError):
    status = 412
    message = "The request's precondition failed."


class LimitExceeded(GlanceLiteError):
    status = 413
    message = "The request returned a 413 Request Entity Too Large."


class URITooLong(GlanceLiteError):
    status = 414
    message = "The request URI is too long."


class ServiceUnavailable(GlanceLiteError):
    status = 503
    message = "The request returned 503 Service Unavailable."


class RegistryUnavailable(ServiceUnavailable):
    """glance-registry could not be reached, gave no answer in time, or answered 503.

    `maybe_applied`: the request may have reached the registry and may still be (or
    have been) applied, although no answer came: a write's outcome is then unknown.
    """

    message = "The image registry is unavailable."
    retry_after = 5

    def __init__(self, message: str | None = None, *, maybe_applied: bool = False):
        super().__init__(message)
        self.maybe_applied = maybe_applied


class ConfigError(GlanceLiteError):
    """Bad configuration found at start-up; never reaches a client."""

    message = "Invalid configuration"


BY_STATUS = {
    cls.status: cls
    for cls in (
        Invalid,
        NotAuthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        LimitExceeded,
        URITooLong,
        ServiceUnavailable,
    )
}


def from_status(status: int, message: str) -> GlanceLiteError:
    """The exception a peer's HTTP status stands for (the registry client's table)."""
    return BY_STATUS.get(status, GlanceLiteError)(message)
