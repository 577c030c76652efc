"""The one refusal type of the service layer (its own module so that every service module can raise it without
importing the others)."""

from __future__ import annotations


class ServiceError(ValueError):
    """A refusal with a stable ``code`` (translated in the UI), an English message and the field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None, status: int = 400, *,
                 fields: list[dict[str, str]] | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status
        #: every field at fault ``[{field, code, message}]`` (bad input with several problems)
        self.fields = fields
        #: seconds a client should wait (503 busy, 429): sent as ``Retry-After``
        self.retry_after = retry_after
