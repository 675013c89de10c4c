"""OpenLineage events from every run: what lakebox knows of the data's journey, in the open
standard, for Marquez or any other consumer (docs/lineage.md).

The runner calls three things, none of which can fail a run:

    lineage = run_started(ctx)                  START of the pipeline run
    lineage.stage_ended(name, status, started, error)
                                                START and COMPLETE/FAIL of the stage, and of
                                                each dbt model it built (children of the stage)
    lineage.run_ended(status, error)            COMPLETE/FAIL of the run; waits ≤ 1 s for the endpoint
    lineage.stopped(stage, why)                 a run a signal (SIGTERM, Ctrl-C) stopped: FAIL for
                                                the stage under way and for the run

With LAKEBOX_LINEAGE=off, run_started returns a stand-in that does nothing and this package
imports nothing beyond the standard library.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.observability.lineage.delivery import Delivery
    from lakebox.stage import RunContext

__all__ = ["NoLineage", "RunLineage", "run_started"]


class NoLineage:
    """Lineage switched off."""

    def stage_ended(self, name: str, status: str, started: dt.datetime, error: str | None) -> None:
        pass

    def run_ended(self, status: str, error: str | None) -> None:
        pass

    def stopped(self, stage: tuple[str, dt.datetime] | None, why: str) -> None:
        pass


def run_started(ctx: RunContext) -> RunLineage | NoLineage:
    from lakebox import core_settings as core

    if core.LINEAGE.read(ctx.settings.env) == "off":
        return NoLineage()
    try:
        return RunLineage(ctx)
    except Exception as exc:  # noqa: BLE001 - lineage never fails a run
        ctx.log.warning("lineage: could not start; this run emits none", error=f"{type(exc).__name__}: {exc}")
        return NoLineage()


class RunLineage:
    """The events of one pipeline run, its stages and their dbt models."""

    def __init__(self, ctx: RunContext) -> None:
        from lakebox import core_settings as core
        from lakebox.observability.lineage.delivery import Delivery
        from lakebox.observability.lineage.events import run_event, run_uuid

        self.ctx = ctx
        env = ctx.settings.env
        self.namespace = core.OPENLINEAGE_NAMESPACE.read(env)
        self.job = ctx.pipeline
        self.run_id = run_uuid(ctx.run_id)
        self.delivery: Delivery = Delivery(ctx.settings.home, core.OPENLINEAGE_URL.optional(env),
                                           core.OPENLINEAGE_API_KEY.optional(env))
        self._warned = False
        self._ended = False
        self.delivery.emit([run_event("START", None, self.namespace, self.job, self.run_id, job_type="JOB")])

    def stage_ended(self, name: str, status: str, started: dt.datetime, error: str | None) -> None:
        try:
            self._stage_ended(name, status, started, error)
        except Exception as exc:  # noqa: BLE001 - lineage never fails a run
            self._warn(f"stage {name}", exc)

    def _stage_ended(self, name: str, status: str, started: dt.datetime, error: str | None) -> None:
        from lakebox.observability.lineage.datasets import stage_lineage
        from lakebox.observability.lineage.events import run_event, run_uuid
        from lakebox.warehouse.ops import utcnow

        ended = utcnow()
        found = stage_lineage(self.ctx, started, ended)
        job = f"{self.job}.{name}"
        run_id = run_uuid(self.ctx.run_id, name)
        parent = (self.job, self.run_id)
        end_type = "COMPLETE" if status == "success" else "FAIL"
        events = [run_event("START", started, self.namespace, job, run_id, parent=parent, root=parent,
                            inputs=found.inputs)]
        by_name = {d["name"]: d for d in found.outputs}
        for model in found.models:
            m_job, m_run = f"{job}.{model.name}", run_uuid(self.ctx.run_id, name, model.name)
            reads = [d for d in found.inputs if d["name"] in model.reads] + [
                {"namespace": d["namespace"], "name": d["name"]} for d in found.outputs if d["name"] in model.reads]
            made = [by_name[model.name]] if model.name in by_name else []
            named = [{"namespace": d["namespace"], "name": d["name"]} for d in made]
            for kind, at, outputs in (("START", started, named), (end_type, ended, made)):
                events.append(run_event(kind, at, self.namespace, m_job, m_run, parent=(job, run_id), root=parent,
                                        job_type="MODEL", sql=model.sql, inputs=reads, outputs=outputs,
                                        error=error if kind == "FAIL" else None))
        events.append(run_event(end_type, ended, self.namespace, job, run_id, parent=parent, root=parent,
                                inputs=found.inputs, outputs=found.outputs, error=error))
        self.delivery.emit(events)

    def run_ended(self, status: str, error: str | None) -> None:
        from lakebox.observability.lineage.events import run_event

        self._ended = True
        try:
            end_type = "FAIL" if status == "failed" else "COMPLETE"
            self.delivery.emit([run_event(end_type, None, self.namespace, self.job, self.run_id, job_type="JOB",
                                          error=error if end_type == "FAIL" else None)])
        except Exception as exc:  # noqa: BLE001 - lineage never fails a run
            self._warn("run end", exc)
        self._deliver()

    def stopped(self, stage: tuple[str, dt.datetime] | None, why: str) -> None:
        """The run was stopped (a signal, or the audit trail failing): START and FAIL for the
        stage under way (`stage`: its name and start), and FAIL for the run unless its end went
        out already. No dataset is looked up: the stage's work was rolled back, and the
        process is on its way out."""
        from lakebox.observability.lineage.events import run_event, run_uuid
        from lakebox.warehouse.ops import utcnow

        if self._ended:
            return
        if stage is not None:
            try:
                name, started = stage
                job, run_id, parent = f"{self.job}.{name}", run_uuid(self.ctx.run_id, name), (self.job, self.run_id)
                self.delivery.emit([
                    run_event("START", started, self.namespace, job, run_id, parent=parent, root=parent),
                    run_event("FAIL", utcnow(), self.namespace, job, run_id, parent=parent, root=parent, error=why)])
            except Exception as exc:  # noqa: BLE001 - lineage never fails a run
                self._warn(f"stage {stage[0]}", exc)
        self.run_ended("failed", why)

    def _deliver(self) -> None:
        from lakebox.settings import redact

        waiting = self.delivery.finish()
        d = self.delivery
        if d.refused:
            self.ctx.log.warning("lineage: the OpenLineage endpoint refused an event; events are kept in the spool "
                                 "until `lakebox lineage flush` succeeds", url=redact(str(d.url)),
                                 answer=redact(d.refused), spooled=waiting)
        elif waiting:
            self.ctx.log.info("lineage: endpoint not reached; events spooled for the next run or "
                              "`lakebox lineage flush`", url=redact(str(d.url)),
                              reason=redact(d.unreachable or "slow"), spooled=waiting)

    def _warn(self, where: str, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            self.ctx.log.warning(f"lineage: {where}: could not emit", error=f"{type(exc).__name__}: {exc}")

