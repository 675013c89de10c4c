"""The sample readings as a tiny JSON API on 127.0.0.1, so the pipeline runs offline:
`GET /v1/readings?since=...` answers `{"records": [...]}` with the readings at or after `since`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SAMPLE = Path(__file__).parent / "sample" / "readings.json"


class _Readings(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/v1/readings":
            self.send_error(404)
            return
        since = parse_qs(url.query).get("since", [""])[0].replace("T", " ")[:19]
        records = [r for r in json.loads(SAMPLE.read_text())["records"] if r["measured_at"] >= since]
        body = json.dumps({"records": records}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # lakebox logs the fetch


@contextmanager
def serve_sample() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
