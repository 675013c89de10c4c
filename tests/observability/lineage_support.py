"""Validating OpenLineage events offline against the spec's JSON Schema (openlineage_spec/),
and a loopback Marquez-compatible receiver (`POST /api/v1/lineage`, 201)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

SPEC = Path(__file__).parent / "openlineage_spec"


def _registry() -> Registry:
    resources = [Resource.from_contents(json.loads(p.read_text())) for p in [SPEC / "OpenLineage.json",
                                                                             *sorted((SPEC / "facets").glob("*.json"))]]
    return Registry().with_resources((r.id(), r) for r in resources)


REGISTRY = _registry()
CORE = json.loads((SPEC / "OpenLineage.json").read_text())


def validate(event: dict[str, Any]) -> None:
    """The event against the core schema, and each facet against the schema its _schemaURL names."""
    jsonschema.Draft202012Validator(CORE, registry=REGISTRY, format_checker=jsonschema.FormatChecker()).validate(event)
    for facet in _facets(event):
        url = facet["_schemaURL"]
        assert url in _known_urls(), f"facet schema not vendored: {url}"
        jsonschema.Draft202012Validator({"$ref": url}, registry=REGISTRY,
                                        format_checker=jsonschema.FormatChecker()).validate(facet)


def _known_urls() -> set[str]:
    found = set()
    for p in (SPEC / "facets").glob("*.json"):
        doc = json.loads(p.read_text())
        found |= {f"{doc['$id']}#/$defs/{name}" for name in doc.get("$defs", {})}
    return found


def _facets(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from event["run"].get("facets", {}).values()
    yield from event["job"].get("facets", {}).values()
    for d in [*event.get("inputs", []), *event.get("outputs", [])]:
        for key in ("facets", "inputFacets", "outputFacets"):
            yield from d.get(key, {}).values()


@dataclass
class Marquez:
    """Records the events posted to /api/v1/lineage; answers 201, or each of `statuses` first."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[tuple[int, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)


@contextmanager
def marquez(port: int = 0) -> Iterator[Marquez]:
    record = Marquez()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with record.lock:
                status, answer = record.statuses.pop(0) if record.statuses else (201, b"")
                if self.path == "/api/v1/lineage" and status == 201:
                    record.events.append(json.loads(body))
                    record.headers.append(dict(self.headers))
                elif self.path != "/api/v1/lineage":
                    status, answer = 404, b'{"code":404,"message":"HTTP 404 Not Found"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()
