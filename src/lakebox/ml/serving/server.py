"""`lakebox ml serve`: bind the app (loopback unless a token is set), poll the registry,
serve until stopped.

Off loopback a bearer token is required (LAKEBOX_SERVE_TOKEN, environment only): without
one the server refuses to start (a settings error, exit 2). uvicorn runs one process with
uvloop and httptools; the socket is bound here, so a caller (tests, `lakebox serve`) can ask
for port 0 and read the port it got.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import TYPE_CHECKING, Any, cast

from lakebox.errors import ConfigError
from lakebox.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lakebox.ml.serving.catalog import Catalog
    from lakebox.ml.serving.online_log import OnlineLog
    from lakebox.ml.spec import MLModelSpec
    from lakebox.pipelines.spec import PipelineSpec
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(settings: Settings, host: str) -> str | None:
    """The token requests must carry: required off loopback, used on loopback when set."""
    from lakebox.core_settings import SERVE_TOKEN

    token = SERVE_TOKEN.optional(settings.env)
    if not token and not is_loopback(host):
        raise ConfigError(f"binding {host} (not loopback) needs a bearer token: set LAKEBOX_SERVE_TOKEN in the "
                          f"environment, or bind {LOOPBACK}")
    return token or None


def every_spec() -> list[MLModelSpec]:
    """The models of every pipeline (declared in its folder) and those registered at run time."""
    from lakebox.errors import ConfigError as NoModels
    from lakebox.ml.specs import registered_pipelines, specs_for
    from lakebox.settings import discovered_pipelines

    found = cast("Mapping[str, PipelineSpec]", discovered_pipelines(os.environ))  # set to pipelines.discover
    specs: dict[str, MLModelSpec] = {}
    for name in sorted({*found, *registered_pipelines()}):
        pipeline = found.get(name)
        declared = [pipeline.resolve(ref) for ref in pipeline.ml_models] if pipeline else []
        try:
            for spec in specs_for(name, declared):
                specs.setdefault(spec.name, spec)
        except NoModels:
            continue
    return list(specs.values())


def generations(warehouse: Warehouse, specs: list[MLModelSpec]) -> dict[str, int]:
    """Each model's history generation (how versions are labelled), read once at start."""
    from lakebox.ml.history import current_generation

    return {s.name: current_generation(warehouse, s.name) for s in specs}


def make_catalog(settings: Settings, specs: list[MLModelSpec], gens: dict[str, int] | None = None) -> Catalog:
    from lakebox.core_settings import SERVE_POLL
    from lakebox.ml.serving.catalog import Catalog

    return Catalog(settings, specs, gens, SERVE_POLL.read(settings.env))


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"lakebox ml serve: cannot bind {host}:{port} ({exc.strerror}); choose another --port "
                          "or --host") from None
    sock.listen(2048)
    return sock


def uvicorn_server(settings: Settings, catalog: Catalog, host: str, port: int,
                   log: OnlineLog | None = None) -> tuple[Any, socket.socket]:
    """A uvicorn Server for the app and its bound socket (run it with `server.run(sockets=[sock])`)."""
    import uvicorn

    from lakebox.core_settings import SERVE_MAX_BODY
    from lakebox.ml.serving.app import build_app

    token = token_for(settings, host)
    sock = bind(host, port)
    app = build_app(catalog, token, SERVE_MAX_BODY.read(settings.env), log)
    config = uvicorn.Config(app, loop="uvloop", http="httptools", lifespan="off", access_log=False,
                            log_level="warning", server_header=False, date_header=False, backlog=2048)
    return uvicorn.Server(config), sock


def serve(settings: Settings, specs: list[MLModelSpec], gens: dict[str, int], host: str = LOOPBACK,
          port: int = 5001) -> None:
    """Serve `specs`' models until interrupted (the warehouse is not held open meanwhile)."""
    required = token_for(settings, host) is not None  # refuse before loading anything
    from lakebox.ml.serving.online_log import OnlineLog, warehouse_writer

    catalog = make_catalog(settings, specs, gens)
    catalog.start()
    log = OnlineLog(warehouse_writer(settings)).start()
    server, sock = uvicorn_server(settings, catalog, host, port, log)
    bound = sock.getsockname()
    get_logger().info("serving models", host=bound[0], port=bound[1],
                      models=[s.spec.name for s in catalog.models()], token_required=required)
    try:
        server.run(sockets=[sock])
    finally:
        catalog.stop()
        log.stop()
        sock.close()
