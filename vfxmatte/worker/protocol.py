"""The worker's JSON-lines protocol: request parsing and the messages it sends.

One JSON object per line, UTF-8, in both directions; the full description is in
the package docstring (:mod:`vfxmatte.worker`) and in the README (section Nuke).
"""

from __future__ import annotations

import json
import math
from typing import Any

from vfxmatte.errors import VfxMatteError, closest_hint

__all__ = [
    "PROTOCOL_VERSION",
    "REQUESTS",
    "ProtocolError",
    "encode",
    "error_message",
    "parse_request",
    "report_data",
]

#: Bumped when a request or a message changes incompatibly.
PROTOCOL_VERSION = 1

#: Request type -> the fields it may carry besides ``type`` and ``id``.
REQUESTS: dict[str, frozenset[str]] = {
    "hello": frozenset({"protocol", "client"}),
    "schema": frozenset(),
    "run": frozenset({"config", "set"}),
    "cancel": frozenset(),
    "status": frozenset(),
    "shutdown": frozenset(),
}


class ProtocolError(VfxMatteError):
    """A line that is not a valid request (malformed JSON, unknown type, bad field).

    ``request_id`` is the request's ``id`` when the line was a JSON object that had one.
    """

    def __init__(self, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def _check_id(value: Any) -> Any:
    if value is None or isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    raise ProtocolError(f"A request 'id' must be a string or an integer, got {value!r}.")


def parse_request(line: str, number: int = 0) -> dict[str, Any]:
    """Decode one request line into a dict with at least ``type`` and ``id``.

    Raises:
        ProtocolError: the line is not a JSON object, has no or an unknown ``type``,
            or carries a field its type does not take (with the closest valid name).
    """
    where = f"Line {number}" if number else "The request"
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(
            f"{where} is not valid JSON ({exc}); send one object per line."
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{where} must be a JSON object, got {type(data).__name__}.")
    data["id"] = request_id = _check_id(data.get("id"))
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(
            f"{where} has no 'type' string; valid: {', '.join(REQUESTS)}.", request_id
        )
    if kind not in REQUESTS:
        raise ProtocolError(
            f"Unknown request type '{kind}'; valid: {', '.join(REQUESTS)}."
            + closest_hint(kind, REQUESTS),
            request_id,
        )
    allowed = REQUESTS[kind] | {"type", "id"}
    for key in data:
        if key not in allowed:
            raise ProtocolError(
                f"The '{kind}' request takes no field '{key}'; valid: "
                f"{', '.join(sorted(allowed))}." + closest_hint(key, allowed),
                request_id,
            )
    return data


def _clean(value: Any) -> Any:
    """JSON cannot carry NaN or infinity: send them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def encode(message: dict[str, Any]) -> str:
    """One message as a JSON line (without the newline)."""
    return json.dumps(_clean(message), ensure_ascii=False, allow_nan=False, default=str)


def error_message(request_id: Any, exc: BaseException, *, internal: bool = False) -> dict:
    """The ``error`` message of an exception: its type name and its text.

    ``internal`` marks an exception that is not a :class:`VfxMatteError` (a bug);
    the worker logs its traceback on stderr.
    """
    return {
        "type": "error",
        "id": request_id,
        "error": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "internal": internal,
    }


def report_data(report: Any) -> dict[str, Any]:
    """A :class:`~vfxmatte.engine.pipeline.RunReport` as JSON-ready data."""
    return {
        "ok": report.ok,
        "cancelled": report.cancelled,
        "written": list(report.written),
        "reused": list(report.reused),
        "failed": {str(k): v for k, v in sorted(report.failed.items())},
        "seconds": report.seconds,
        "timings": dict(report.timings),
        "outputs": dict(report.outputs),
        "summary": report.summary(),
        "drift": report.drift.to_dict(),
        "drift_summary": report.drift.summary(),
    }
