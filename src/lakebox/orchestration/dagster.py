"""Dagster definitions generated from lakebox's pipelines: `lakebox.orchestration.dagster:defs`.

Per pipeline: assets for what feeds it, its raw tables, staging models, marts and ML steps
(lineage from `orchestration.graph`), ONE multi-asset that runs the pipeline with lakebox's
own `run_pipeline` (so ops.* audit rows are those of `lakebox run`; the lakebox run id and
status are tagged on the Dagster run and the Dagster run id is on every lakebox log line of
the run), asset checks from the quality gate, the dbt tests and the open quarantine (a
warning), a job tagged `lakebox/pipeline` (one run per pipeline at a time, with the tag
concurrency in dagster.yaml and lakebox's lock), a schedule for an API-fed pipeline, daily
partitions (a backfill of many days is one run) and a new-drop sensor for a file-fed one,
a sensor that reports the runs made outside Dagster (`lakebox run`, `watch`, the demo) to
the instance, sensors that alert on a failed run and on failed checks, and a sensor that
asks for a retraining run (job `lakebox_retrain`) when a model's trigger is due
(lakebox.ml.triggers: a schedule, drift flagged, live quality below its threshold).

Settings, read when the definitions load: `LAKEBOX_<PIPELINE>_SCHEDULE` (cron, or `off`;
default hourly), `LAKEBOX_<PIPELINE>_PARTITIONS_START` (first day, default 2024-01-01),
`LAKEBOX_<PIPELINE>_SENSOR_INTERVAL` (seconds, default 30), `LAKEBOX_EXECUTOR`
(`in-process`, or `celery` with `LAKEBOX_CELERY_BROKER` and `LAKEBOX_CELERY_BACKEND`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dagster as dg

from lakebox.orchestration import graph as g
from lakebox.orchestration.alerts import alert
from lakebox.orchestration.drops import already_read, new_drops

if TYPE_CHECKING:
    from collections.abc import Callable

    from lakebox.ml.spec import MLModelSpec
    from lakebox.pipelines.spec import PipelineSpec

PIPELINE_TAG = "lakebox/pipeline"
RUN_ID_TAG = "lakebox/run_id"
STATUS_TAG = "lakebox/status"  # success, partial or failed: lakebox's word on the run
OUTSIDE_RUNS_PER_TICK = 100
TRIGGER_TAG = "lakebox/trigger"  # a retraining run's trigger: model:kind:evidence
RETRAIN_INTERVAL = 60  # seconds between looks at the models' triggers


def _pipelines() -> list[PipelineSpec]:
    """Every pipeline lakebox knows (the one place the adapter asks for them)."""
    from lakebox.pipelines import discover

    return list(discover().values())


def _setting(pipeline: str, key: str) -> str:
    """One of the settings the core reads for every pipeline (lakebox.core_settings), in force."""
    from lakebox.settings import Settings

    return Settings.load().pipeline(pipeline)[key] or ""


def _key(node: g.Node | tuple[str, str]) -> dg.AssetKey:
    return dg.AssetKey(list(node.key if isinstance(node, g.Node) else node))


def _partitions(graph: g.PipelineGraph) -> dg.DailyPartitionsDefinition | None:
    if not graph.file_fed:
        return None
    start = _setting(graph.name, "partitions_start")
    return dg.DailyPartitionsDefinition(start_date=start, end_offset=1)  # today's drop too


def _executor() -> dg.ExecutorDefinition:
    """Dagster's own Celery executor when LAKEBOX_EXECUTOR=celery (workers: `lakebox worker`);
    else in-process: a job is one step, and Dagster's default (multiprocess) would start a
    second Python process per run that imports Dagster and the definitions again, for
    nothing (seconds of every run, `lakebox bench` --serve)."""
    from lakebox.orchestration.worker import celery_config, executor_kind

    if executor_kind() != "celery":
        return dg.in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config())


def pipeline_assets(spec: PipelineSpec, graph: g.PipelineGraph) -> list[Any]:
    """The pipeline's source assets and the multi-asset that runs it."""
    partitions = _partitions(graph)
    sources = [dg.AssetSpec(_key(n), group_name=spec.name, description=n.description,
                            metadata={"layer": n.layer}, kinds={"source"})
               for n in graph.layer(g.SOURCE)]
    specs = [dg.AssetSpec(_key(n), deps=[_key(d) for d in n.deps], group_name=spec.name, skippable=True,
                          description=n.description or f"{n.layer} {n.name}, built by the {n.stage} stage",
                          metadata={"layer": n.layer, "lakebox stage": n.stage})
             for n in graph.built]
    checks = [dg.AssetCheckSpec(g.GATE_CHECK, asset=_key(n), description="the quality gate of the batches this run "
                                "loaded (ops.dq_results); failing batches are quarantined, never loaded")
              for n in graph.layer(g.RAW)]
    checks += [dg.AssetCheckSpec(g.QUARANTINE_CHECK, asset=_key(n), description="no quarantined input of this table "
                                 "open (ops.quarantine) when the run ended; open items make lakebox's run `partial` "
                                 "(a warning: see `lakebox quarantine list`)")
               for n in graph.layer(g.RAW)]
    checks += [dg.AssetCheckSpec(g.DBT_CHECK, asset=_key(n), description="dbt tests: " + "; ".join(n.tests))
               for n in graph.nodes if n.tests]

    @dg.multi_asset(name=f"{spec.name}_pipeline", specs=specs, check_specs=checks, can_subset=False,
                    partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
                    description=f"lakebox run {spec.name}: {spec.description}",
                    op_tags={PIPELINE_TAG: spec.name})
    def run(context):  # type: ignore[no-untyped-def]  # Dagster reads the annotation itself
        yield from _run(context, spec, graph)

    return [*sources, run]


def _run(context: dg.AssetExecutionContext, spec: PipelineSpec, graph: g.PipelineGraph) -> Iterator[Any]:
    """lakebox's own run of the pipeline; then what it reached, as materializations and checks."""
    from lakebox.errors import LakeboxError
    from lakebox.lake import Lake
    from lakebox.log import configure_logging, log_context
    from lakebox.observability import after_runs, configure, flush_alerts
    from lakebox.runner import run_pipeline
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    configure_logging(settings.logs_dir, settings.log_level)
    configure(settings)  # log shipping, as for `lakebox run`
    options: dict[str, Any] = {"dagster_run_id": context.run_id}
    if context.has_partition_key:  # a day's run: that day's files
        options["days"] = (context.partition_key, context.partition_key)
    elif context.has_partition_key_range:  # a backfill's days in one run: those days' files
        days = context.partition_key_range
        options["days"] = (days.start, days.end)
    try:
        with log_context(dagster_run_id=context.run_id), open_warehouse(settings) as warehouse:
            outcome = run_pipeline(spec.pipeline(), settings, Lake.from_settings(settings), warehouse, options)
            context.instance.add_run_tags(context.run_id, {RUN_ID_TAG: outcome.run_id, STATUS_TAG: outcome.status})
            reached = g.evaluate(graph, outcome, warehouse, spec.sources)
            after_runs(settings, [outcome], warehouse)  # metrics and run alerts, as for `lakebox run`
        flush_alerts()
    except LakeboxError as exc:  # busy (another run of it), or the warehouse cannot be opened
        raise dg.Failure(description=str(exc)) from exc
    context.log.info(f"lakebox run {outcome.run_id}: {outcome.status} in {outcome.duration_s:.2f}s")
    for node in reached.materialized:
        yield dg.MaterializeResult(asset_key=_key(node), metadata=_materialization_metadata(reached, node))
    for check in reached.checks:
        yield dg.AssetCheckResult(asset_key=_key(check.node), check_name=check.check, passed=check.passed,
                                  severity=_severity(check), metadata=_check_metadata(reached, check))
    if outcome.status not in ("success", "partial"):
        raise dg.Failure(description=f"lakebox run {outcome.run_id} {outcome.status}: {outcome.error}",
                         metadata={"lakebox_run_id": outcome.run_id})


def _materialization_metadata(reached: g.RunAssets, node: g.Node) -> dict[str, Any]:
    outcome = reached.outcome
    rows = {name: rows_out for name, _, _, _, rows_out in outcome.stages}
    return {"lakebox_run_id": outcome.run_id, "lakebox_status": outcome.status,
            "stage_rows_out": dg.MetadataValue.int(int(rows.get(node.stage, 0)))}


def _check_metadata(reached: g.RunAssets, check: g.CheckOutcome) -> dict[str, Any]:
    return {"detail": check.detail, "lakebox_run_id": reached.outcome.run_id,
            "failures": dg.MetadataValue.json(list(check.failures))}


def _severity(check: g.CheckOutcome) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.WARN if check.warning else dg.AssetCheckSeverity.ERROR


def pipeline_job(spec: PipelineSpec, graph: g.PipelineGraph) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        f"{spec.name}_job", selection=dg.AssetSelection.assets(*[_key(n) for n in graph.built]),
        description=f"lakebox run {spec.name}", tags={PIPELINE_TAG: spec.name},
        executor_def=_executor(),
    )


def pipeline_schedule(spec: PipelineSpec, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition | None:
    cron = _setting(spec.name, "schedule")
    if cron.strip().lower() == "off":
        return None
    return dg.ScheduleDefinition(name=f"{spec.name}_schedule", job=job, cron_schedule=cron, execution_timezone="UTC",
                                 default_status=dg.DefaultScheduleStatus.RUNNING,
                                 description=f"runs {spec.name} on {cron} (LAKEBOX_{spec.name.upper()}_SCHEDULE)")


def drop_sensor(spec: PipelineSpec, job: dg.UnresolvedAssetJobDefinition,
                partitions: dg.DailyPartitionsDefinition) -> dg.SensorDefinition:
    """A run of the day's partition for each new drop in the pipeline's landing folder."""

    @dg.sensor(name=f"{spec.name}_new_drop", job=job, default_status=dg.DefaultSensorStatus.RUNNING,
               minimum_interval_seconds=int(_setting(spec.name, "sensor_interval")),
               description=f"a run of {spec.name} for each new drop (its waiting_input fingerprint)")
    def new_drop(context):  # type: ignore[no-untyped-def]
        from lakebox.settings import Settings

        assert spec.waiting_input is not None
        settings = Settings.load()
        fingerprint = spec.resolve(spec.waiting_input)(settings)
        read = already_read(settings, spec.sources)
        if read is None:  # a run holds the warehouse: look again next time, the cursor unchanged
            yield dg.SkipReason("the warehouse is busy with a run; looking again at the next evaluation")
            return
        runs, cursor = new_drops(fingerprint, context.cursor, read)
        context.update_cursor(cursor)
        if not runs:
            yield dg.SkipReason("no new drop (or one still arriving)")
        for run in runs:
            if not partitions.has_partition_key(run.day):
                context.log.warning(f"{spec.name}: {run.files} name day {run.day}, outside the partitions "
                                    f"(LAKEBOX_{spec.name.upper()}_PARTITIONS_START); not run")
                continue
            yield dg.RunRequest(run_key=run.run_key, partition_key=run.day,
                                tags={PIPELINE_TAG: spec.name, "lakebox/files": ",".join(run.files)[:1000]})

    return new_drop


def _failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The run's failed error-severity checks (an open quarantine is a warning each run
    repeats until it is dealt with: the gate check that opened it alerted once)."""
    failed = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation: Any = entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
    return failed


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> str:
    errors = [entry.dagster_event.event_specific_data.error  # type: ignore[union-attr]
              for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
    return "\n".join(e.message.strip() for e in errors if e is not None)


@dg.run_failure_sensor(name="lakebox_run_failed_alert", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="alerts through lakebox's alert hook when a pipeline run fails")
def run_failed_alert(context):  # type: ignore[no-untyped-def]
    run = context.dagster_run
    error = _step_errors(context.instance, run.run_id) or context.failure_event.message or ""
    alert("run failed", pipeline=run.tags.get(PIPELINE_TAG, run.job_name), dagster_run_id=run.run_id,
          lakebox_run_id=run.tags.get(RUN_ID_TAG), error=error,
          failed_checks=_failed_checks(context.instance, run.run_id))


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="lakebox_failed_check_alert",
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="alerts on failed asset checks of a run that succeeded (Dagster does not fail it)")
def failed_check_alert(context):  # type: ignore[no-untyped-def]
    run = context.dagster_run
    failed = _failed_checks(context.instance, run.run_id)
    if failed:
        alert("checks failed", pipeline=run.tags.get(PIPELINE_TAG, run.job_name), dagster_run_id=run.run_id,
              lakebox_run_id=run.tags.get(RUN_ID_TAG), failed_checks=failed)


def outside_runs_sensor(specs: list[PipelineSpec], graphs: dict[str, g.PipelineGraph]) -> dg.SensorDefinition:
    """Reports lakebox's runs made outside Dagster to the instance, oldest first, as asset
    materializations and check evaluations with the lakebox run id, status and rows, so the
    asset pages show what `lakebox run`, `watch` and the demo built. Its cursor is the last
    run reported; the first evaluation (at `lakebox serve`'s start) reports every run so far."""

    @dg.sensor(name="lakebox_runs_outside_dagster", minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="shows lakebox runs made outside Dagster (lakebox run, watch, demo) on the assets")
    def outside_runs(context):  # type: ignore[no-untyped-def]
        from lakebox.orchestration.outside_runs import Mark, finished_runs
        from lakebox.settings import Settings

        mark = Mark(**json.loads(context.cursor)) if context.cursor else None
        found = finished_runs(Settings.load(), {s.name: s for s in specs}, graphs, mark, OUTSIDE_RUNS_PER_TICK)
        if found is None:
            return dg.SkipReason("the warehouse is busy with a run; looking again at the next evaluation")
        instance = context.instance
        inside = {value for _, values in instance.get_run_tags(tag_keys=[RUN_ID_TAG]) for value in values}
        running = {run.tags.get(PIPELINE_TAG) for run in instance.get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))}
        reported = 0
        for run in found:
            outcome = run.reached.outcome
            if outcome.pipeline in running:  # its Dagster run tags the lakebox run as it ends: wait for it
                break
            if outcome.run_id not in inside:
                for event in _outside_events(run.reached):
                    instance.report_runless_asset_event(event)
                reported += 1
            mark = run.mark
        if mark is not None:
            context.update_cursor(json.dumps({"ended_at": mark.ended_at, "run_id": mark.run_id}))
        return dg.SkipReason(f"{reported} lakebox run(s) made outside Dagster reported")

    return outside_runs


def _outside_events(reached: g.RunAssets) -> list[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    outcome = reached.outcome
    made = {"made_by": "lakebox outside Dagster (lakebox run, watch or demo)"}
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation] = [
        dg.AssetMaterialization(asset_key=_key(node), metadata={**_materialization_metadata(reached, node), **made},
                                tags={STATUS_TAG: outcome.status, RUN_ID_TAG: outcome.run_id})
        for node in reached.materialized]
    events += [dg.AssetCheckEvaluation(asset_key=_key(check.node), check_name=check.check, passed=check.passed,
                                       severity=_severity(check), metadata={**_check_metadata(reached, check), **made})
               for check in reached.checks]
    return events


def _models(specs: list[PipelineSpec]) -> list[MLModelSpec]:
    """Every model of `specs`: those their pipelines declare, and those registered at run time."""
    from lakebox.ml.specs import specs_for

    found: list[MLModelSpec] = []
    for spec in specs:
        declared = [spec.resolve(ref) for ref in spec.ml_models]
        found += specs_for(spec.name, declared) if declared else []
    return found


@dg.op(config_schema={"pipeline": str, "model": str, "kind": str, "evidence": str, "champion": str, "reason": str},
       )
def retrain_model(context):  # type: ignore[no-untyped-def]  # Dagster reads the annotation itself
    """Train the model the sensor found a trigger for; the trigger goes with the training run."""
    from lakebox.errors import LakeboxError
    from lakebox.ml.specs import spec_named
    from lakebox.ml.triggers import Trigger, retrain
    from lakebox.pipelines import discover
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    config = context.op_config
    found = discover().get(config["pipeline"])
    declared = [found.resolve(ref) for ref in found.ml_models] if found else []
    spec = spec_named(config["pipeline"], config["model"], declared)[0]
    trigger = Trigger(spec.name, config["kind"], config["evidence"], config["champion"], config["reason"])
    settings = Settings.load()
    try:
        with open_warehouse(settings) as warehouse:
            result = retrain(settings, warehouse, spec, trigger, lakebox_run_id=context.run_id)
    except LakeboxError as exc:  # busy (a run of the pipeline), or the store or warehouse unusable
        raise dg.Failure(description=str(exc)) from exc
    context.log.info(f"{spec.name} retrained on {trigger.kind}: {result.message}")


retrain_job = dg.JobDefinition(
    graph_def=dg.GraphDefinition(name="lakebox_retrain", node_defs=[retrain_model]),
    executor_def=dg.in_process_executor, description="retrains one model on a trigger (lakebox.ml.triggers)",
)


def retrain_sensor(models: Callable[[], list[MLModelSpec]]) -> dg.SensorDefinition:
    """A retraining run for each model whose trigger is due, unless one for the same trigger is
    queued or running; once retrained, the trigger is in ml.model_triggers and no longer due
    (a run that failed leaves it due: the next tick asks again)."""

    @dg.sensor(name="lakebox_retrain_triggers", job=retrain_job, minimum_interval_seconds=RETRAIN_INTERVAL,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="retrains a model on its schedule, on drift flagged, or when live quality drops "
                           "(LAKEBOX_<PIPELINE>_RETRAIN_SCHEDULE, _RETRAIN_ON_DRIFT, _QUALITY_THRESHOLD)")
    def retrain_triggers(context):  # type: ignore[no-untyped-def]
        return _retrain_requests(context, models())

    return retrain_triggers


def _retrain_requests(context: dg.SensorEvaluationContext, specs: list[MLModelSpec]) -> Iterator[Any]:
    from lakebox.errors import LakeboxError
    from lakebox.ml.triggers import check
    from lakebox.observability import flush_alerts
    from lakebox.orchestration.drops import no_warehouse_yet
    from lakebox.settings import Settings
    from lakebox.warehouse import open_warehouse

    settings = Settings.load()
    if not specs or no_warehouse_yet(settings):
        yield dg.SkipReason("no ML models" if not specs else "no warehouse yet")
        return
    active = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]
    runs = context.instance.get_runs(filters=dg.RunsFilter(statuses=active))
    busy = {run.tags.get(PIPELINE_TAG) for run in runs if run.job_name != retrain_job.name}
    due = []
    for spec in specs:
        if spec.pipeline in busy:  # its run holds the warehouse and brings new labels: look after it
            continue
        try:
            with open_warehouse(settings) as warehouse:
                found = check(settings, warehouse, spec)
        except LakeboxError as exc:  # the warehouse busy with a run, a store unusable: look again next time
            context.log.warning(f"{spec.name}: triggers not checked: {exc}")
            continue
        if found is not None:
            due.append((spec, found))
    flush_alerts()
    waiting = {run.tags.get(TRIGGER_TAG) for run in runs if run.job_name == retrain_job.name}
    due = [(spec, found) for spec, found in due if found.run_key not in waiting]
    if not due:
        yield dg.SkipReason(f"no retraining trigger due for {len(specs)} model(s)")
    for spec, found in due:
        config = {"pipeline": spec.pipeline, "model": spec.name, "kind": found.kind, "evidence": found.evidence,
                  "champion": found.champion, "reason": found.reason}
        yield dg.RunRequest(run_config={"ops": {"retrain_model": {"config": config}}},
                            tags={PIPELINE_TAG: spec.pipeline, TRIGGER_TAG: found.run_key})


def build_definitions() -> dg.Definitions:
    assets: list[Any] = []
    jobs: list[Any] = []
    schedules: list[Any] = []
    sensors: list[Any] = [run_failed_alert, failed_check_alert]
    specs = _pipelines()
    graphs = {spec.name: g.build_graph(spec) for spec in specs}
    sensors.append(outside_runs_sensor(specs, graphs))
    sensors.append(retrain_sensor(lambda: _models(specs)))
    jobs.append(retrain_job)
    for spec in specs:
        graph = graphs[spec.name]
        mine = pipeline_assets(spec, graph)
        job = pipeline_job(spec, graph)
        shared = {a.key for a in assets if isinstance(a, dg.AssetSpec)}  # a source read by two pipelines
        assets += [a for a in mine if not (isinstance(a, dg.AssetSpec) and a.key in shared)]
        jobs.append(job)
        partitions = _partitions(graph)
        if partitions is not None:
            sensors.append(drop_sensor(spec, job, partitions))
        elif (schedule := pipeline_schedule(spec, job)) is not None:
            schedules.append(schedule)
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules, sensors=sensors)


defs = build_definitions()
