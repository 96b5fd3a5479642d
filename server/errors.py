"""The tiny exception hierarchy. Everything the server raises on purpose is an EarsightError."""


class EarsightError(Exception):
    """Base class: a clear, user-facing reason is the message."""


class BadRequest(EarsightError):
    """The request is malformed or its values are out of range (answered with /ear/fail)."""


class NotFound(EarsightError):
    """A named thing (ear, layer, file, stream, subscriber) does not exist."""
