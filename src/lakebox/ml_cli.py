"""`lakebox ml train|predict|drift|models PIPELINE`: the lifecycle by hand.

Registered on the main app with `app.add_typer(ml_app, name="ml")`. MLflow and
scikit-learn are imported inside the commands, so `lakebox --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakebox.errors import LakeboxError
from lakebox.tables import Column

if TYPE_CHECKING:
    from lakebox.ml.promotion import Move

ml_app = typer.Typer(help="The ML lifecycle: train, register (champion rule), predict, drift.",
                     no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

PipelineArg = Annotated[str, typer.Argument(help="pipeline whose models to use, e.g. github_commits")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="only this model (default: every model of the pipeline)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
MODEL_COLUMNS = (Column("model", kind="id", drop=1), Column("version", kind="id"), Column("aliases", kind="id"),
                 Column("metric", kind="id", drop=2), Column("value", kind="number", digits=4), Column("decision"))
DRIFT_COLUMNS = (Column("model", kind="id", drop=1), Column("drift", kind="status"), Column("feature", kind="id"),
                 Column("method", kind="id", drop=2), Column("statistic", kind="number", digits=4),
                 Column("p value", kind="id", drop=3), Column("threshold", kind="number", digits=2, drop=4))


@contextmanager
def _session() -> Iterator[tuple[Any, Any]]:
    """Settings and an open warehouse; a LakeboxError exits with its code and a redacted message."""
    from lakebox.log import configure_logging
    from lakebox.settings import Settings, redact
    from lakebox.warehouse import open_warehouse

    try:
        settings = Settings.load()
        configure_logging(settings.logs_dir, settings.log_level)
        with open_warehouse(settings) as warehouse:
            yield settings, warehouse
    except LakeboxError as exc:
        typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(exc.exit_code) from None


def _each(pipeline: str, model: str | None, action: Callable[[Any, Any, Any], None]) -> None:
    from lakebox.ml.specs import spec_named
    from lakebox.pipelines import discover

    with _session() as (settings, warehouse):
        found = discover().get(pipeline)  # a pipeline folder's models, or only those registered in-process
        declared = [found.resolve(ref) for ref in found.ml_models] if found else []
        for spec in spec_named(pipeline, model, declared):
            action(settings, warehouse, spec)


@ml_app.command()
def train(pipeline: PipelineArg, model: ModelOpt = None) -> None:
    """Train every candidate, log the runs in MLflow, register the best under the champion rule."""
    from lakebox.ml.train import train as run_train

    def action(settings: Any, warehouse: Any, spec: Any) -> None:
        result = run_train(settings, warehouse, spec)
        typer.echo(result.message)
        for run in result.candidates:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(run.metrics.items()))
            typer.echo(f"  {run.name:22} {shown}  (run {run.run_id}, {run.seconds:.1f} s)")
        if result.decision:
            typer.echo(f"  v{result.decision.version} -> {result.decision.decision}: {result.decision.reason}")

    _each(pipeline, model, action)


@ml_app.command()
def predict(pipeline: PipelineArg, model: ModelOpt = None) -> None:
    """Score rows not scored yet with the current champion."""
    from lakebox.ml.predict import predict as run_predict

    def action(settings: Any, warehouse: Any, spec: Any) -> None:
        result = run_predict(settings, warehouse, spec)
        rate = f" ({result.rows_scored / result.seconds:,.0f} rows/s)" if result.rows_scored else ""
        typer.echo(f"{result.message} in {result.seconds:.2f} s{rate}")

    _each(pipeline, model, action)


@ml_app.command()
def drift(
    pipeline: PipelineArg, model: ModelOpt = None,
    fail_on_drift: Annotated[bool, typer.Option(help="exit 1 when a feature drifted or drift could not be computed")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare what each model scores with its reference (KS, PSI; see docs/ml.md); write ml.drift_report."""
    from lakebox import tables
    from lakebox.ml.drift import drift as run_drift

    flagged: list[str] = []
    found: list[dict[str, Any]] = []

    def action(settings: Any, warehouse: Any, spec: Any) -> None:
        result = run_drift(settings, warehouse, spec)
        rows = [(spec.name, "DRIFT" if f.drifted else "ok", f.feature, f.method, f.statistic,
                 None if f.p_value is None else float(f"{f.p_value:.3g}"), f.threshold) for f in result.features]
        table = tables.Table(DRIFT_COLUMNS, rows, result.message)
        found.extend(table.records())
        if not as_json:
            tables.show(table)
        if result.drifted:
            flagged.append(spec.name)
        if fail_on_drift and not result.computed:  # an unknown answer is no pass
            typer.secho(f"error: drift could not be computed for {spec.name}: {result.message}", fg="red", err=True)
            flagged.append(spec.name)

    _each(pipeline, model, action)
    if as_json:
        tables.print_json(found)
    if flagged and fail_on_drift:
        raise typer.Exit(1)


@ml_app.command()
def models(pipeline: PipelineArg, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Registered versions, their aliases and the decisions that placed them."""
    from lakebox import tables
    from lakebox.ml import tracking

    found: list[dict[str, Any]] = []

    def action(settings: Any, warehouse: Any, spec: Any) -> None:
        from mlflow.exceptions import MlflowException

        from lakebox.ml.history import checked_store
        client, past = checked_store(settings, warehouse, spec.name)
        try:
            versions = client.search_model_versions(f"name = '{spec.name}'")
            aliases = client.get_registered_model(spec.name).aliases
        except MlflowException:
            if not as_json:
                typer.echo(f"{spec.name}: no versions yet (lakebox ml train {spec.pipeline})", err=True)
            return
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        if past.generation > 1:
            typer.echo(f"{spec.name}: history generation {past.generation} (lakebox ml forget); lakebox's tables "
                       f"label MLflow's version N as N.g{past.generation}", err=True)
        decisions = _decisions(warehouse, spec.name)
        rows = []
        for mv in sorted(versions, key=lambda v: int(v.version)):
            decided = decisions.get(str(mv.version))
            rows.append((spec.name, f"v{mv.version}", ",".join(sorted(by_version.get(str(mv.version), []))),
                         spec.metric, decided[0] if decided else None, decided[1] if decided else ""))
        table = tables.Table(MODEL_COLUMNS, rows, f"{spec.name} ({spec.metric}, margin {spec.margin}; "
                             f"tracking {tracking.tracking_uri(settings)})")
        found.extend(table.records())
        if not as_json:
            tables.show(table)

    _each(pipeline, model, action)
    if as_json:
        tables.print_json(found)


@ml_app.command()
def forget(
    model: Annotated[str, typer.Argument(help="the model whose history starts over, e.g. life-expectancy")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept in ml.model_decisions)")],
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="the pipeline that owns MODEL "
                                                 "(default: found among the pipelines)")] = None,
) -> None:
    """Start MODEL's history over when its MLflow store was lost: a new generation, no
    champion; the rows written before keep their version labels (see docs/ml.md)."""
    from lakebox.ml.history import forget as forget_history
    from lakebox.ml.promotion import person

    if not reason.strip():
        typer.secho("error: --reason must say why the history starts over", fg="red", err=True)
        raise typer.Exit(2)
    with _session() as (settings, warehouse):
        spec = _spec_of(model, pipeline)
        started = forget_history(settings, warehouse, spec, reason.strip(), person())
        typer.echo(f"{model}: history started over as generation {started.generation}; new versions are "
                   f"labelled N.g{started.generation} (ml.model_decisions and ml.model_stores say why)")


@ml_app.command()
def serve(
    port: Annotated[int, typer.Option("--port", help="the port to listen on")] = 5001,
    host: Annotated[str, typer.Option("--host", help="the address to bind; any but loopback needs "
                                      "LAKEBOX_SERVE_TOKEN")] = "127.0.0.1",
) -> None:
    """Serve every registered model over MLflow's scoring protocol (POST /models/NAME/invocations);
    a moved alias is served within seconds, without a restart (see docs/ml.md)."""
    from lakebox.ml.serving.server import every_spec, generations, token_for
    from lakebox.ml.serving.server import serve as run_serve
    from lakebox.settings import redact

    with _session() as (settings, warehouse):  # held only to read how versions are labelled
        token_for(settings, host)
        specs = every_spec()
        gens = generations(warehouse, specs)
    try:
        run_serve(settings, specs, gens, host, port)
    except LakeboxError as exc:
        typer.secho(f"error: {redact(str(exc))}", fg="red", err=True)
        raise typer.Exit(exc.exit_code) from None


ModelArg = Annotated[str, typer.Argument(help="the registered model, e.g. commit-classifier")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why (kept in ml.model_decisions)")]
PipelineOpt = Annotated[str | None, typer.Option("--pipeline", help="the pipeline that owns MODEL "
                                                 "(default: found among the pipelines)")]
HISTORY_COLUMNS = (Column("decided at", kind="id"), Column("version", kind="id"), Column("from", kind="id"),
                   Column("decision", kind="id"), Column("by", kind="id"), Column("value", kind="number", digits=4,
                                                                                  drop=2),
                   Column("reason", drop=1))


def _spec_of(model: str, pipeline: str | None) -> Any:
    """The spec of the model named `model` (in `pipeline`, or whichever pipeline has it); exits 2 if none."""
    from lakebox.errors import ConfigError
    from lakebox.ml.specs import registered_pipelines, spec_named
    from lakebox.pipelines import discover

    found = discover()
    for name in [pipeline] if pipeline else sorted({*found, *registered_pipelines()}):
        spec = found.get(name)
        declared = [spec.resolve(ref) for ref in spec.ml_models] if spec else []
        try:
            return spec_named(name, model, declared)[0]
        except ConfigError:
            if pipeline:
                raise
    typer.secho(f"error: no pipeline has a model {model!r} (lakebox ml models PIPELINE lists them)", fg="red",
                err=True)
    raise typer.Exit(2)


@ml_app.command()
def promote(
    model: ModelArg, version: Annotated[str, typer.Argument(help="the version to make champion, e.g. 3 (or 3.g2)")],
    reason: ReasonOpt, pipeline: PipelineOpt = None,
) -> None:
    """Make VERSION the champion by hand: a row in ml.model_decisions (from, to, by whom, why);
    a server picks it up within seconds."""
    from lakebox.ml.promotion import promote as run_promote

    with _session() as (settings, warehouse):
        moved = run_promote(settings, warehouse, _spec_of(model, pipeline), version, reason)
        _say_moved(model, moved)


def _say_moved(model: str, moved: Move) -> None:
    """One line per alias move, as `ml history` lists it: from, to, by whom, why."""
    typer.echo(f"{model}: champion v{moved.from_version or '-'} -> v{moved.to_version} ({moved.decided_by}: "
               f"{moved.reason})")


@ml_app.command()
def rollback(
    model: ModelArg, reason: ReasonOpt,
    to: Annotated[str | None, typer.Option("--to", help="the version to give the champion alias back to "
                                           "(default: the one that held it before the current)")] = None,
    pipeline: PipelineOpt = None,
) -> None:
    """Give the champion alias back to the previous champion (or --to VERSION), with a row saying why."""
    from lakebox.ml.promotion import rollback as run_rollback

    with _session() as (settings, warehouse):
        moved = run_rollback(settings, warehouse, _spec_of(model, pipeline), reason, to)
        _say_moved(model, moved)


@ml_app.command()
def canary(
    model: ModelArg,
    percent: Annotated[float, typer.Option("--percent", min=0, max=100,
                                           help="share of requests the challenger answers; 0 stops the canary")],
    pipeline: PipelineOpt = None,
) -> None:
    """Send PERCENT% of MODEL's requests to its challenger (sticky by X-Request-Key when a
    caller sends one); a running server picks it up within seconds."""
    from lakebox.ml.promotion import set_canary

    with _session() as (settings, warehouse):
        typer.echo(set_canary(settings, warehouse, _spec_of(model, pipeline), percent))


@ml_app.command("history")
def history_cmd(model: ModelArg, pipeline: PipelineOpt = None, as_json: JsonOpt = False) -> None:
    """Every decision about MODEL, oldest first: each move of its aliases, by the rule or by hand."""
    from lakebox import tables
    from lakebox.ml.promotion import decisions

    with _session() as (settings, warehouse):
        spec = _spec_of(model, pipeline)
        rows = [(str(r["decided_at"])[:19], r["version"], r["from_version"] or "", r["decision"],
                 r["decided_by"] or "rule", r["value"], r["reason"]) for r in decisions(warehouse, spec.name)]
    table = tables.Table(HISTORY_COLUMNS, rows, f"{model}: {len(rows)} decision(s), oldest first "
                                                "(ml.model_decisions)")
    if as_json:
        tables.print_json(table.records())
    else:
        tables.show(table)


def _decisions(warehouse: Any, name: str) -> dict[str, tuple[float | None, str]]:
    """The current generation's decisions by MLflow version (see lakebox.ml.history)."""
    from lakebox.ml import history

    if not warehouse.table_exists("ml", "model_decisions"):
        return {}
    rows = warehouse.query("select version, value, reason from ml.model_decisions where model_name = ? "
                           "order by decided_at", [name])
    generation = history.current_generation(warehouse, name)
    return {history.mlflow_version(str(v)): (value, reason) for v, value, reason in rows
            if history.generation_of(str(v)) == generation}
