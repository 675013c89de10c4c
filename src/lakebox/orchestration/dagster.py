"""Dagster definitions generated from lakebox's pipelines: `lakebox.orchestration.dagster:defs`.

Per pipeline: assets for what feeds it, its raw tables, staging models, marts and ML steps
(lineage from `orchestration.graph`), ONE multi-asset that runs the pipeline with lakebox's
own `run_pipeline` (so ops.* audit rows are those of `lakebox run`; the lakebox run id is
tagged on the Dagster run and the Dagster run id is on every lakebox log line of the run),
asset checks from the quality gate and the dbt tests, a job tagged `lakebox/pipeline` (one
run per pipeline at a time, with the tag concurrency in dagster.yaml and lakebox's lock), a
schedule for an API-fed pipeline, daily partitions (a backfill of many days is one run) and a
new-drop sensor for a file-fed one,
and sensors that alert on a failed run and on failed checks.

Settings, read when the definitions load: `LAKEBOX_<PIPELINE>_SCHEDULE` (cron, or `off`;
default hourly), `LAKEBOX_<PIPELINE>_PARTITIONS_START` (first day, default 2024-01-01),
`LAKEBOX_<PIPELINE>_SENSOR_INTERVAL` (seconds, default 30), `LAKEBOX_EXECUTOR`
(`in-process`, or `celery` with `LAKEBOX_CELERY_BROKER` and `LAKEBOX_CELERY_BACKEND`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dagster as dg

from lakebox.orchestration import graph as g
from lakebox.orchestration.alerts import alert
from lakebox.orchestration.drops import new_drops

if TYPE_CHECKING:
    from lakebox.pipelines.spec import PipelineSpec

PIPELINE_TAG = "lakebox/pipeline"
RUN_ID_TAG = "lakebox/run_id"


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
            reached = g.evaluate(graph, outcome, warehouse, spec.sources)
            after_runs(settings, [outcome], warehouse)  # metrics and run alerts, as for `lakebox run`
        flush_alerts()
    except LakeboxError as exc:  # busy (another run of it), or the warehouse cannot be opened
        raise dg.Failure(description=str(exc)) from exc
    context.instance.add_run_tags(context.run_id, {RUN_ID_TAG: outcome.run_id})
    context.log.info(f"lakebox run {outcome.run_id}: {outcome.status} in {outcome.duration_s:.2f}s")
    rows = {name: rows_out for name, _, _, _, rows_out in outcome.stages}
    for node in reached.materialized:
        yield dg.MaterializeResult(asset_key=_key(node), metadata={
            "lakebox_run_id": outcome.run_id, "stage_rows_out": dg.MetadataValue.int(int(rows.get(node.stage, 0)))})
    for check in reached.checks:
        yield dg.AssetCheckResult(asset_key=_key(check.node), check_name=check.check, passed=check.passed,
                                  severity=dg.AssetCheckSeverity.ERROR, metadata={
                                      "detail": check.detail, "lakebox_run_id": outcome.run_id,
                                      "failures": dg.MetadataValue.json(list(check.failures))})
    if outcome.status not in ("success", "partial"):
        raise dg.Failure(description=f"lakebox run {outcome.run_id} {outcome.status}: {outcome.error}",
                         metadata={"lakebox_run_id": outcome.run_id})


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
        fingerprint = spec.resolve(spec.waiting_input)(Settings.load())
        runs, cursor = new_drops(fingerprint, context.cursor)
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
    failed = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation: Any = entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        if not evaluation.passed:
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


def build_definitions() -> dg.Definitions:
    assets: list[Any] = []
    jobs: list[Any] = []
    schedules: list[Any] = []
    sensors: list[Any] = [run_failed_alert, failed_check_alert]
    for spec in _pipelines():
        graph = g.build_graph(spec)
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
