"""ONTAP REST errors raised by the simulator's models; the app renders them as ONTAP's error envelope."""

from __future__ import annotations

from typing import Any


class OntapApiError(Exception):
    """An error ONTAP would answer with: HTTP status, numeric string code, message and optional target."""

    status = 400
    code = "2"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.target = target

    def body(self) -> dict[str, Any]:
        """The `{"error": {...}}` envelope."""
        error: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.target:
            error["target"] = self.target
        return {"error": error}


class NotAuthorized(OntapApiError):
    """Wrong or missing credentials (401, 6691623)."""

    status, code = 401, "6691623"

    def __init__(self) -> None:
        super().__init__("User is not authorized.")


class ApiNotFound(OntapApiError):
    """No such REST path (404, code 3)."""

    status, code = 404, "3"

    def __init__(self) -> None:
        super().__init__("API not found")


class MethodNotAllowed(OntapApiError):
    """The path exists but not for this method (405)."""

    status, code = 405, "3"

    def __init__(self, method: str) -> None:
        super().__init__(f"The method \"{method}\" is not supported for this API.")


class EntryNotFound(OntapApiError):
    """`entry doesn't exist` (404, code 4): the instance named in the path is absent."""

    status, code = 404, "4"

    def __init__(self, target: str = "uuid") -> None:
        super().__init__("entry doesn't exist", target=target)


class Duplicate(OntapApiError):
    """An object with that identity already exists (409)."""

    status = 409


class InvalidValue(OntapApiError):
    """`"<value>" is an invalid value for field "<field>"` (400, 262197)."""

    code = "262197"

    def __init__(self, field: str, value: Any) -> None:
        super().__init__(f"\"{value}\" is an invalid value for field \"{field}\"", target=field)


class UnexpectedArgument(OntapApiError):
    """Unknown body field or query argument (400, 262179)."""

    code = "262179"

    def __init__(self, name: str) -> None:
        super().__init__(f"Unexpected argument \"{name}\".", target=name)


class FieldNotSettable(OntapApiError):
    """A read-only field in a POST/PATCH body (400, 262196)."""

    code = "262196"

    def __init__(self, name: str) -> None:
        super().__init__(f"Field \"{name}\" cannot be set in this operation.", target=name)


class SvmNotFound(OntapApiError):
    """The SVM named in a body does not exist (400, 2621462)."""

    code = "2621462"

    def __init__(self, name: str) -> None:
        super().__init__(f"SVM \"{name}\" does not exist.", target="svm.name")


class SvmRequired(OntapApiError):
    """A body names no SVM (400, 2621707)."""

    code = "2621707"

    def __init__(self) -> None:
        super().__init__("Either \"svm.uuid\" or \"svm.name\" must be provided.", target="svm")
