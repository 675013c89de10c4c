"""The MLflow UI as `lakebox serve` runs it: MLflow's own server, opening on model training.

MLflow 3's UI has two workflows, GenAI (traces; the model registry hidden) and model
training (experiments, runs, the registry), and opens on GenAI unless the browser's
localStorage says otherwise (key `mlflow.workflowType_v1`, read by the UI's workflow
provider; no server setting or experiment tag decides it). lakebox trains models, so its
MLflow page sets that key to model training before MLflow's scripts read it, when the
browser has no choice of its own yet: a person who switches to GenAI keeps it. The same
way, and as lakebox's MLflow server runs with telemetry off (MLFLOW_DISABLE_TELEMETRY), the
UI's own telemetry is off and its banner about it dismissed, and the assistant panel does
not open by itself on the first visit.

MLflow starts a custom app through its `mlflow.app` entry points (`mlflow server
--app-name`, as for its own basic-auth app). `lakebox serve` declares this one in a small
distribution-info folder on the MLflow process's PYTHONPATH (`mlflow_app_path`), so no
reinstall of lakebox is needed for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

APP_NAME = "lakebox"
WORKFLOW_KEY = "mlflow.workflowType_v1"
MODEL_TRAINING = "machine_learning"
# localStorage keys of MLflow's UI (`<key>_v<version>`, JSON values) and lakebox's defaults.
UI_DEFAULTS: dict[str, object] = {
    WORKFLOW_KEY: MODEL_TRAINING,
    "mlflow.settings.telemetry.enabled_v1": False,
    "mlflow.telemetry.info.alert.dismissed_v1": True,
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
}
_DEFAULTS_JSON = json.dumps({key: json.dumps(value) for key, value in UI_DEFAULTS.items()})
_DEFAULTS_SCRIPT = (f"<script>try{{for(const[k,v]of Object.entries({_DEFAULTS_JSON})){{"
                    "if(localStorage.getItem(k)===null)localStorage.setItem(k,v)}}catch(e){}</script>")


def opening_on_model_training(index_html: str) -> str:
    """MLflow's index.html with lakebox's UI defaults set first thing in <head>."""
    head = index_html.find("<head>")
    if head < 0:
        return _DEFAULTS_SCRIPT + index_html
    at = head + len("<head>")
    return index_html[:at] + _DEFAULTS_SCRIPT + index_html[at:]


def create_app() -> Any:
    """MLflow's FastAPI app with its index page opening on model training (uvicorn --factory)."""
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import app
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    page = opening_on_model_training((Path(str(flask_app.static_folder)) / "index.html").read_text())

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    app.router.routes.insert(0, Route("/", index, methods=["GET", "HEAD"]))  # before MLflow's mount of "/"
    return app


def mlflow_app_path(folder: Path) -> Path:
    """A folder to put on the MLflow process's PYTHONPATH: its distribution info declares
    this app as `mlflow server --app-name lakebox`."""
    info = folder / "lakebox_mlflow_ui-1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lakebox-mlflow-ui\nVersion: 1\n")
    (info / "entry_points.txt").write_text(f"[mlflow.app]\n{APP_NAME} = {__name__}:create_app\n")
    return folder
