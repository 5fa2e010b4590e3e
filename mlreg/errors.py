"""One error hierarchy for the whole project.

Each class carries the HTTP status a server answers with and the exit code the
CLI ends with, so callers catch by type and the transports never compare
strings. ``error_code`` is the stable machine-readable name in JSON bodies.

This module imports nothing: every package (and every gunicorn worker) imports it first.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MlregError(Exception):
    """Base class of every error mlreg raises on purpose; never raised itself."""

    status_code: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    error_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


# --- the caller's mistakes (4xx) ------------------------------------------------------------


class InvalidInput(MlregError):
    """The caller passed something malformed (a name, an argument, a payload)."""

    status_code = 400
    exit_code = 2
    error_code = "INVALID_PARAMETER_VALUE"


class SchemaError(InvalidInput):
    """Data does not match a model signature."""

    error_code = "SCHEMA_MISMATCH"


class PayloadTooLarge(InvalidInput):
    """A request body or an upload over its size limit."""

    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"

    @classmethod
    def body(cls, length: int | None, limit: int, setting: str) -> PayloadTooLarge:
        """The one message for a request body over ``limit`` (``length`` None: chunked)."""
        if length is None:
            return cls(f"request body is larger than the limit of {limit} bytes ({setting})")
        return cls(f"request body is {length} bytes; the limit is {limit} bytes ({setting})")


class UnsupportedMediaType(InvalidInput):
    """A request body of a content type the route does not take."""

    status_code = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"


class RequestTimeout(InvalidInput):
    """A client did not send its whole request (headers and body) within the read deadline."""

    status_code = 408
    error_code = "REQUEST_TIMEOUT"


class HeadersTooLarge(InvalidInput):
    """A request's headers are larger than the server reads."""

    status_code = 431
    error_code = "REQUEST_HEADER_FIELDS_TOO_LARGE"


class ClientClosedRequest(InvalidInput):
    """The client closed the connection before its request was read or answered.

    No response can reach it; the status (nginx's 499) is for logs and metrics only.
    """

    status_code = 499
    error_code = "CLIENT_CLOSED_REQUEST"


class MethodNotAllowed(InvalidInput):
    """An HTTP method the route does not answer."""

    status_code = 405
    error_code = "METHOD_NOT_ALLOWED"


class Unauthenticated(MlregError):
    """No credentials, or wrong ones."""

    status_code = 401
    exit_code = 13
    error_code = "UNAUTHENTICATED"


class PermissionDenied(MlregError):
    """The caller is known but lacks the permission (the message names it)."""

    status_code = 403
    exit_code = 13
    error_code = "PERMISSION_DENIED"


class RateLimited(MlregError):
    """Too many failed sign-ins for a user or from an address; try again later."""

    status_code = 429
    exit_code = 13
    error_code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MLmodelError(MlregError):
    """An MLmodel file (or the model directory around it) is broken."""

    status_code = 400
    exit_code = 3
    error_code = "INVALID_MLMODEL"


class NotFound(MlregError):
    """Something named by the caller does not exist; subclasses say what kind of thing."""

    status_code = 404
    exit_code = 4
    error_code = "RESOURCE_DOES_NOT_EXIST"


class ModelNotFound(NotFound):
    """A registered model, version, stage, alias, or a model directory."""


class ExperimentNotFound(NotFound):
    """An experiment (by id or name)."""


class RunNotFound(NotFound):
    """A tracked run."""


class ArtifactNotFound(NotFound):
    """A file or directory: an artifact, or a local file to log."""


class TagNotFound(NotFound):
    """A tag to remove that is not set."""


class PrincipalNotFound(NotFound):
    """A user or group that does not exist."""


class WebhookNotFound(NotFound):
    """A webhook id that does not exist."""


class EndpointNotFound(NotFound):
    """No HTTP route at that path."""

    error_code = "ENDPOINT_NOT_FOUND"


class AlreadyExists(MlregError):
    """A name that is taken (a registered model, an experiment, a model path)."""

    status_code = 409
    exit_code = 5
    error_code = "RESOURCE_ALREADY_EXISTS"


class VersionConflict(MlregError):
    """A state change that conflicts with the current state (e.g. a non-READY version)."""

    status_code = 409
    exit_code = 5
    error_code = "INVALID_STATE"


# --- our side, or the world around us (5xx) -------------------------------------------------


class DigestMismatch(MlregError):
    """Stored artifacts do not match their recorded digest (tampered, truncated or missing)."""

    status_code = 500
    exit_code = 6
    error_code = "DIGEST_MISMATCH"


class StoreError(MlregError):
    """The database cannot be used as it is (unreachable, or an old schema)."""

    status_code = 503
    exit_code = 7
    error_code = "STORE_UNAVAILABLE"


class ModelExecutionError(MlregError):
    """The model itself failed while computing a prediction."""

    status_code = 500
    exit_code = 8
    error_code = "MODEL_EXECUTION_ERROR"


class SwapRefused(MlregError):
    """Follow mode did not swap in a new model version (it failed to load or warm up); the
    served version goes on serving."""

    status_code = 409
    exit_code = 8
    error_code = "MODEL_SWAP_REFUSED"


class SignatureChanged(SwapRefused):
    """Follow mode did not swap in a new version: its signature would break the served one's
    clients (``--allow-signature-change`` swaps it in anyway)."""

    error_code = "SIGNATURE_CHANGED"


class Timeout(MlregError):
    """A request or a call that took longer than its limit."""

    status_code = 504
    exit_code = 9
    error_code = "TIMEOUT"


class BackendUnavailable(MlregError):
    """The model server behind us (TensorFlow Serving) cannot be reached or is not ready."""

    status_code = 503
    exit_code = 10
    error_code = "BACKEND_UNAVAILABLE"


class BackendError(MlregError):
    """The model server behind us (TensorFlow Serving) failed in a way that is not ours."""

    status_code = 502
    exit_code = 10
    error_code = "BACKEND_ERROR"


class DockerError(MlregError):
    """The Docker engine refused or failed a call."""

    exit_code = 11
    error_code = "DOCKER_ERROR"


class BuildError(MlregError):
    """An image or its build context could not be made."""

    exit_code = 11
    error_code = "BUILD_FAILED"


class AddressInUse(MlregError):
    """A server cannot listen where it was asked to (the port is taken)."""

    exit_code = 14
    error_code = "ADDRESS_IN_USE"


class RegistrationFailed(MlregError):
    """A model version could not be stored; it is left FAILED_REGISTRATION for `mlreg gc`."""

    exit_code = 12
    error_code = "REGISTRATION_FAILED"


class NotSupported(MlregError):
    """A request for something this server does not do (an MLflow API mlreg leaves out)."""

    status_code = 501
    exit_code = 2
    error_code = "NOT_IMPLEMENTED"


class MissingDependency(MlregError):
    """An optional package a feature needs is not installed (the message names the extra)."""

    exit_code = 15
    error_code = "MISSING_DEPENDENCY"


class InternalError(MlregError):
    """A bug: something that should not happen did (the message names it)."""
