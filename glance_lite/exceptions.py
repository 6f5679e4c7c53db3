"""Domain errors. Code below the WSGI edge raises these; wsgi.py translates them once.

The registry client runs the same table backwards (status -> class), so the api sees
the registry's errors as the same exceptions.
"""


class GlanceLiteError(Exception):
    status = 500
    message = "An unknown exception occurred"

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


class ServiceUnavailable(GlanceLiteError):
    status = 503
    message = "The request returned 503 Service Unavailable."


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
        ServiceUnavailable,
    )
}


def from_status(status: int, message: str) -> GlanceLiteError:
    """The exception a peer's HTTP status stands for (the registry client's table)."""
    return BY_STATUS.get(status, GlanceLiteError)(message)
