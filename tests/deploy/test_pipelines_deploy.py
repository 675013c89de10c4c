"""Deploy follows the specs: every bundled pipeline has its CronJob (`lakebox run <name>`,
when its schedule setting says, as the deployment's ConfigMap gives the settings: the
spec's default unless set there), no CronJob runs a pipeline that does not exist, and
docs/settings.md has a section for no pipeline that does not exist (each pipeline's rows
are held by tests/pipelines/test_discovery.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

import lakebox.pipelines
from lakebox.pipelines import discover
from lakebox.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s" / "base"
BUNDLED = Path(lakebox.pipelines.__file__).parent


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]


def bundled() -> list[str]:
    return [name for name, spec in discover({}).items() if Path(spec.folder).parent == BUNDLED]


def cronjobs() -> dict[str, dict[str, Any]]:
    """The CronJobs of deploy/k8s/base/pipelines.yaml by the pipeline they run."""
    found: dict[str, dict[str, Any]] = {}
    for doc in _docs("pipelines.yaml"):
        assert doc["kind"] == "CronJob", f"pipelines.yaml holds a {doc['kind']}"
        container = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        found[container["args"][1]] = doc
    return found


def deployed_schedules(home: Path) -> dict[str, str | None]:
    """Each pipeline's schedule setting as the pods see it (the lakebox-config ConfigMap)."""
    config = next(d for d in _docs("config.yaml") if d["metadata"]["name"] == "lakebox-config")["data"]
    env = {k: v for k, v in config.items() if re.fullmatch(r"LAKEBOX_\w+_SCHEDULE", k)} | {"LAKEBOX_HOME": str(home)}
    settings = Settings.load(env=env)
    return {name: settings.pipeline(name)["schedule"] for name in bundled()}


def test_every_bundled_pipeline_has_its_cronjob_on_its_schedule(tmp_path: Path) -> None:
    jobs, schedules = cronjobs(), deployed_schedules(tmp_path)
    assert set(bundled()) >= {"orders", "retail", "github_commits", "who_gho"}
    for name in bundled():
        assert name in jobs, f"deploy/k8s/base/pipelines.yaml: no CronJob runs `lakebox run {name}`"
        job = jobs[name]
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert job["metadata"]["name"] == f"lakebox-{name.replace('_', '-')}"
        assert job["metadata"]["labels"]["lakebox.dev/pipeline"] == name
        assert container["args"] == ["run", name]
        assert job["spec"]["schedule"] == schedules[name], \
            f"CronJob lakebox-{name}: schedule {job['spec']['schedule']!r}, its schedule setting {schedules[name]!r}"


def test_no_cronjob_runs_a_pipeline_that_does_not_exist() -> None:
    unknown = set(cronjobs()) - set(bundled())
    assert not unknown, f"deploy/k8s/base/pipelines.yaml runs pipelines that do not exist: {sorted(unknown)}"


def test_docs_settings_md_has_no_section_for_a_pipeline_that_does_not_exist() -> None:
    doc = (REPO / "docs" / "settings.md").read_text().split("\n## The pipelines\n", 1)[1]
    sections = re.findall(r"^### (\w+)$", doc, re.MULTILINE)
    assert sorted(sections) == sorted(discover({})), sections
