"""The Starlette app: MLflow's scoring protocol, one path per registered model.

`POST /models/<name>/invocations` (alias `champion`, or `?alias=`), `POST
/models/<name>/versions/<v>/invocations`, `GET /models`, `GET /models/<name>`, `GET /ping`,
`/health`, `/version`. Errors are one JSON line (`{"error": ...}`): 400 for a body the model
cannot take (naming the columns and types it expects), 401 without the token, 404 for an
unknown model, alias or version; never a traceback. Scoring runs on the event loop: it is
CPU work of a millisecond or so, and a thread hop per request cost more than it saved;
requests ready in the same turn of the loop are scored together (`Batcher`).
"""

from __future__ import annotations

import asyncio
import hmac
import random
import time
import uuid
import zlib
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from lakebox.log import get_logger
from lakebox.ml.history import History
from lakebox.ml.predict import features_from_raw, score_features
from lakebox.ml.serving import online_log
from lakebox.ml.serving.catalog import Catalog, Loaded, NotFound
from lakebox.ml.serving.inputs import BadInput, expected, parse
from lakebox.ml.spec import RawRowsRejected

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from lakebox.ml.serving.online_log import OnlineLog

CHAMPION, CHALLENGER = "champion", "challenger"
OPEN_PATHS = frozenset({"/ping", "/health"})  # probes: they tell nothing about the models


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status, headers,
                    media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


class TokenGate:
    """Requires `Authorization: Bearer <token>` (compared in constant time) on every path but
    the probes. The token is never logged or echoed."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        sent = b""
        for key, value in scope["headers"]:
            if key == b"authorization":
                sent = value
        scheme, _, given = sent.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
            await self.app(scope, receive, send)
            return
        response = _json({"error": "a bearer token is required (Authorization: Bearer ...)"}, 401,
                         {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def build_app(catalog: Catalog, token: str | None = None, max_body: int = 10 * 1024 * 1024,
              log: OnlineLog | None = None) -> ASGIApp:
    """The app for `catalog`; with `token`, every non-probe request must carry it; with `log`,
    every answer (and the challenger's shadow answer) goes to ml.online_predictions."""
    from lakebox import __version__

    batcher = Batcher()

    async def ping(request: Request) -> Response:
        return Response("\n", media_type="text/plain")

    async def health(request: Request) -> Response:
        served = {s.spec.name: sorted(s.aliases) for s in catalog.models()}
        return _json({"status": "ok", "models": served})

    async def version(request: Request) -> Response:
        import mlflow

        return _json({"lakebox": __version__, "mlflow": mlflow.__version__})

    async def models(request: Request) -> Response:
        return _json([_describe(s, inputs=False) for s in catalog.models()])

    async def model(request: Request) -> Response:
        try:
            return _json(_describe(catalog.model(request.path_params["name"]), inputs=True))
        except NotFound as exc:
            return _error(404, str(exc))

    async def invoke_alias(request: Request) -> Response:
        name = request.path_params["name"]
        alias = request.query_params.get("alias")
        try:
            if alias is not None:
                return await _invoke(request, catalog.alias(name, alias), alias)
            served = catalog.model(name)
            champion = catalog.alias(name, CHAMPION)
        except NotFound as exc:
            return _error(404, str(exc))
        challenger = served.aliases.get(CHALLENGER)
        if challenger is not None and served.canary_percent > 0 and _in_canary(request, served.canary_percent):
            return await _invoke(request, challenger, "canary")
        return await _invoke(request, champion, CHAMPION, shadow=challenger)

    async def invoke_version(request: Request) -> Response:
        try:
            loaded = await _run_off_loop(catalog.version, request.path_params["name"], request.path_params["version"])
        except NotFound as exc:
            return _error(404, str(exc))
        except Exception as exc:  # noqa: BLE001 - a version that cannot load is that request's 404
            return _error(404, f"model {request.path_params['name']} v{request.path_params['version']} could not "
                               f"be loaded ({type(exc).__name__}): {' '.join(str(exc).split())[:300]}")
        return await _invoke(request, loaded, "version")

    async def _invoke(request: Request, loaded: Loaded, role: str, shadow: Loaded | None = None) -> Response:
        t0 = time.perf_counter()
        try:
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > max_body):
                raise BadInput(f"body larger than LAKEBOX_SERVE_MAX_BODY ({max_body} bytes); send fewer rows "
                               f"per request; expected columns {expected(loaded.schema)}")
            body = await _read(request, max_body)
            rows = parse(body, request.headers.get("content-type", "application/json"), loaded.schema)
        except BadInput as exc:
            return _error(400, f"model {loaded.spec.name} v{loaded.label}: {exc}")
        except ClientDisconnect:
            return _error(400, "the client went away before the body was read")
        if loaded.spec.raw_inputs is not None:
            served = catalog.model(loaded.spec.name)
            if served.lookup is None:
                return _error(503, served.lookup_error or f"model {loaded.spec.name}: its warehouse lookup is not "
                                                          "read yet; try again in a few seconds")
            try:
                rows = features_from_raw(loaded.spec, rows, served.lookup)
            except RawRowsRejected as exc:
                return _error(400, f"model {loaded.spec.name} v{loaded.label}: {exc}")
        try:
            predicted, probability = await batcher.score(loaded, rows)
        except Exception as exc:  # noqa: BLE001 - the model refused rows that passed the schema: say which
            get_logger().warning("serve: scoring failed", model=loaded.spec.name, version=loaded.label,
                                 error=str(exc)[:300])
            return _error(400, f"model {loaded.spec.name} v{loaded.label} could not score these rows "
                               f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); expected columns "
                               f"{expected(loaded.schema)}")
        payload: dict[str, Any] = {"predictions": _values(predicted)}
        if probability is not None:
            payload["probability"] = _values(probability)
        ms = (time.perf_counter() - t0) * 1000
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = _json(payload, headers={"X-Lakebox-Model": loaded.spec.name, "X-Lakebox-Version": loaded.label,
                                           "X-Lakebox-Role": role, "X-Request-Id": request_id,
                                           "X-Lakebox-Ms": f"{ms:.2f}"})
        if log is not None:
            log.add(online_log.rows(request_id, loaded.spec.name, loaded.label, role, predicted, ms))
            if shadow is not None:  # scored with other requests' rows off the request path, never delaying it
                log.shadow(request_id, shadow, rows)
        return response

    routes = [
        Route("/ping", ping, methods=["GET"]), Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]), Route("/models", models, methods=["GET"]),
        Route("/models/{name}", model, methods=["GET"]),
        Route("/models/{name}/invocations", invoke_alias, methods=["POST"]),
        Route("/models/{name}/versions/{version}/invocations", invoke_version, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={Exception: _unexpected, 404: _not_found,
                                                       405: _not_allowed})
    return TokenGate(app, token)


class Batcher:
    """Requests for one version that are ready in the same turn of the event loop are scored
    in one call: under concurrent load one call for many single-row requests costs little
    more than one for a single row; a lone request is scored in the next turn, not later.
    A call that fails is retried request by request, so a row the model refuses fails only
    its own request."""

    def __init__(self) -> None:
        self._queued: dict[int, tuple[Loaded, list[tuple[Any, asyncio.Future[Any]]]]] = {}

    async def score(self, loaded: Loaded, rows: Any) -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        key = id(loaded)
        if key not in self._queued:
            self._queued[key] = (loaded, [])
            loop.call_soon(self._run, key)
        self._queued[key][1].append((rows, done))
        result: tuple[Any, Any] = await done
        return result

    def _run(self, key: int) -> None:
        import pyarrow as pa

        loaded, queued = self._queued.pop(key)
        if len(queued) > 1:
            try:
                batch = pa.concat_tables([rows for rows, _ in queued], promote_options="permissive")
                predicted, probability = score_features(loaded.spec, loaded.model, batch)
            except Exception:  # noqa: BLE001 - one request's rows may be at fault: each on its own below
                pass
            else:
                start = 0
                for rows, done in queued:
                    n = rows.num_rows
                    if not done.done():  # a request cancelled meanwhile (its client went away)
                        done.set_result((predicted.slice(start, n),
                                         None if probability is None else probability.slice(start, n)))
                    start += n
                return
        for rows, done in queued:
            if done.done():
                continue
            try:
                done.set_result(score_features(loaded.spec, loaded.model, rows))
            except Exception as exc:  # noqa: BLE001 - handed to the request, which says what failed
                done.set_exception(exc)


def _in_canary(request: Request, percent: float) -> bool:
    """Whether the challenger answers: by the request key (`X-Request-Key` or `?key=`) when one
    is given, so a caller stays on one side; at random otherwise."""
    key = request.headers.get("x-request-key") or request.query_params.get("key")
    if key:
        return zlib.crc32(key.encode()) % 10_000 < percent * 100
    return random.random() * 100 < percent


def _values(array: Any) -> Any:
    """Numbers as a NumPy array (orjson writes it in C), text as a list."""
    import pyarrow as pa

    if pa.types.is_floating(array.type) and not array.null_count:
        return array.to_numpy(zero_copy_only=False)
    return array.to_pylist()


async def _read(request: Request, max_body: int) -> bytes:
    """The body, refused as soon as it grows past `max_body` (a chunked body has no length)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise BadInput(f"body larger than LAKEBOX_SERVE_MAX_BODY ({max_body} bytes); send fewer rows per request")
        chunks.append(chunk)
    return b"".join(chunks)


async def _run_off_loop(func: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func, *args)


def _describe(served: Any, inputs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": served.spec.name, "pipeline": served.spec.pipeline, "task": served.spec.task,
        "aliases": {a: loaded.label for a, loaded in sorted(served.aliases.items())},
        "versions": [History(served.spec.name, served.generation, None).label(v) for v in served.versions],
    }
    if inputs:
        out["inputs"] = {a: [{"name": c.name, "type": c.type} for c in loaded.schema]
                         for a, loaded in sorted(served.aliases.items())}
        # raw: the columns of the table the features are built from (looked up in the warehouse
        # for the rest); features: the model's own feature columns
        out["input_kind"] = "raw" if served.spec.raw_inputs is not None else "features"
    return out


async def _unexpected(request: Request, exc: Exception) -> Response:
    get_logger().error("serve: unexpected error", path=request.url.path, error=f"{type(exc).__name__}: {exc}"[:300])
    return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, f"no such path {request.url.path}; see GET /models")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _error(405, f"{request.method} is not allowed on {request.url.path}")
