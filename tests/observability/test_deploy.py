"""deploy/prometheus passes promtool; every metric the dashboards and rules name is exported."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import orjson
import yaml

from lakebox.observability import note_http_retry, watching
from lakebox.settings import Settings
from tests.observability.conftest import DEPLOY, binary, run_script

METRIC = re.compile(r"\blakebox_[a-z_]+\b")
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = binary("promtool")
    config = DEPLOY / "prometheus" / "prometheus.yml"
    rules = DEPLOY / "prometheus" / "lakebox-rules.yml"
    for args in (["check", "config", str(config)], ["check", "rules", str(rules)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    jobs = {j["job_name"]: j for j in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert jobs["pushgateway"].get("honor_labels") is True, "pushed job/pipeline labels must win"


def test_the_rules_alert_on_failure_staleness_quarantine_and_drift() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "lakebox-rules.yml").read_text())
    exprs = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    assert "lakebox_pipeline_last_run_status" in exprs["LakeboxPipelineFailed"]
    assert "lakebox_pipeline_freshness_sla_seconds" in exprs["LakeboxPipelineStale"]
    assert "lakebox_quarantine_open_items" in exprs["LakeboxQuarantineOpen"]
    assert "lakebox_model_drift_flagged" in exprs["LakeboxModelDrift"]


def exported_names(settings: Settings) -> set[str]:
    """Metric names in a real /metrics answer (histograms as _bucket/_sum/_count)."""
    run_script(settings, [("alpha", False)])
    note_http_retry("orders", 1.5, rate_limited=True)
    with watching(settings, 0) as observer:
        assert observer.url
        text = httpx.get(observer.url, timeout=5).text
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return names


def test_every_metric_in_the_dashboards_and_rules_is_exported(settings: Settings) -> None:
    assert {p.stem for p in DASHBOARDS} == {"platform", "data-quality", "ml", "logs"}
    named: dict[str, set[str]] = {}
    for path in [*DASHBOARDS, DEPLOY / "prometheus" / "lakebox-rules.yml"]:
        for name in METRIC.findall(path.read_text()):
            named.setdefault(name, set()).add(path.name)
    assert len(named) >= 15, sorted(named)
    exported = exported_names(settings)
    missing = {n: sorted(f) for n, f in named.items() if n not in exported}
    assert not missing, f"named in dashboards/rules but not exported: {missing}"


def test_dashboards_use_the_provisioned_datasources() -> None:
    sources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "lakebox.yml").read_text())
    uids = {d["uid"]: d["type"] for d in sources["datasources"]}
    assert sorted(uids.values()) == ["loki", "prometheus"]
    for path in DASHBOARDS:
        board = orjson.loads(path.read_bytes())
        for panel in board["panels"]:
            for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert uids.get(ref["uid"]) == ref["type"], f"{path.name}: {panel['title']} uses {ref}"
    logs = orjson.loads((DEPLOY / "grafana" / "dashboards" / "logs.json").read_bytes())
    assert any('{app="lakebox"' in t["expr"] for p in logs["panels"] for t in p["targets"])
    assert Path(DEPLOY / "grafana" / "provisioning" / "dashboards" / "lakebox.yml").is_file()
