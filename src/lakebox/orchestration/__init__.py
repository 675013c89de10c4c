"""Adapters that run lakebox's own stages under a scheduler: Dagster (`lakebox serve`) and
its Celery workers (`lakebox worker`).

Nothing here holds business logic: a pipeline's run is `lakebox.runner.run_pipeline`, the
same as `lakebox run`. Dagster is imported only by `orchestration.dagster` and the commands
that start it, never on `lakebox run`'s path.
"""
