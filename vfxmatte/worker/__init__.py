"""A persistent local worker that runs vfxmatte for hosts that cannot import it.

Nuke ships its own Python and libtorch; loading another torch into it breaks. The
Nuke plugin therefore starts ``python -m vfxmatte.worker`` (or ``vfxmatte worker``)
in a Python environment where vfxmatte is installed and talks to it over the
process's stdin and stdout. The worker lives as long as the host keeps it: models
it built (the SAM 2 predictor) stay loaded between shots, keyed by their options,
and SAM 2's memory bank carries through every frame of a shot.

Protocol (version 1)
--------------------

One JSON object per line, UTF-8, in both directions. Every request has a
``type`` and may have an ``id`` (a string or an integer) that the answers echo.
Nothing but protocol lines is written to stdout; logs go to stderr.

Requests (host -> worker):

``{"type": "hello", "id": 1, "protocol": 1}``
    -> ``{"type": "hello", "id": 1, "protocol": 1, "vfxmatte": "0.1.0",
    "python": "3.11.9", "executable": ..., "pid": 4242, "schema_digest": "..."}``.
    A different ``protocol`` gives an ``error``.
``{"type": "schema", "id": 2}``
    -> ``{"type": "schema", "id": 2, "schema": {...}}``: every option with its
    type, default, help, choices, range and whether it is a path
    (:mod:`vfxmatte.worker.schema`).
``{"type": "run", "id": 3, "config": {...}, "set": ["matte.backend=classical"]}``
    Runs one shot. ``config`` is the nested mapping of a YAML config file
    (:class:`~vfxmatte.engine.config.PipelineConfig`); ``set`` (optional) holds
    ``KEY=VALUE`` overrides as on the command line. A bad option is answered at
    once with an ``error``; otherwise ``{"type": "started", "id": 3}``, then one
    ``progress`` per frame, then exactly one ``result`` or ``error`` with id 3.
    Frames already written are skipped (resume) unless ``engine.overwrite`` is
    true. One shot runs at a time: a second ``run`` gets an ``error``.
``{"type": "cancel", "id": 4}``
    -> ``{"type": "cancel", "id": 4, "run": 3}`` (``run`` is null when idle). The
    shot stops before its next frame and sends its ``result`` with
    ``"cancelled": true``.
``{"type": "status", "id": 5}``
    -> ``{"type": "status", "id": 5, "state": "running"|"idle", "run": 3,
    "progress": {"phase", "frame", "done", "total"}, "runs": 1, "models": ["sam2"],
    "model_builds": 1}``.
``{"type": "shutdown", "id": 6}``
    Cancels a running shot, waits for its ``result``, answers
    ``{"type": "shutdown", "id": 6}`` and exits with status 0. The end of stdin
    does the same without the answer.

Messages (worker -> host) besides the answers above:

``{"type": "progress", "id": 3, "phase": "matte", "frame": 1004, "done": 4,
"total": 24, "status": "written"}``
    After every frame. ``phase`` is ``propagate`` during SAM 2 propagation
    (``propagate.backend=sam2`` runs it over the whole shot first) and ``matte``
    during the frame loop; ``status`` is ``written``, ``reused`` (resumed) or
    ``failed`` (``engine.on_error=skip``).
``{"type": "result", "id": 3, "report": {"ok": true, "cancelled": false,
"written": [...], "reused": [...], "failed": {"1007": "why"}, "seconds": 12.5,
"timings": {"matte": 4.1, ...}, "outputs": {"rgba": "out/shot.####.exr"},
"summary": "24 frame(s) written, ..."}}``
    The :class:`~vfxmatte.engine.pipeline.RunReport` as data.
``{"type": "error", "id": 3, "error": "ConfigError", "message": "...",
"internal": false}``
    ``error`` is the exception's type name (``ConfigError``, ``InputError``,
    ``ProtocolError`` for a malformed line, ...), ``message`` the library's
    sentence. ``internal`` is true for an unexpected exception (its traceback is
    on stderr). ``id`` is null when the line could not be read. The worker keeps
    serving after every error.
``{"type": "log", "id": 3, "level": "warning", "logger": "vfxmatte.io.image",
"message": "..."}``
    A warning of the library during a run.
"""

from __future__ import annotations

from vfxmatte.worker.protocol import PROTOCOL_VERSION, REQUESTS, ProtocolError
from vfxmatte.worker.schema import config_schema

__all__ = ["PROTOCOL_VERSION", "REQUESTS", "ProtocolError", "config_schema"]
