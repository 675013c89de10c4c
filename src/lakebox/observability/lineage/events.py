"""OpenLineage 2-0-2 run events as plain JSON-ready dicts.

Built by hand rather than with the openlineage-python classes: importing the client pulls in
its every transport (≈0.5-0.8 s here), more than a whole small run may spend on lineage.
Facet versions and `_schemaURL`s are the ones openlineage-python 1.54 stamps; a test pins
them against the client and validates events against the spec's JSON Schema.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

PRODUCER = "https://github.com/lakebox/lakebox"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACETS = "https://openlineage.io/spec/facets/"
FACET_SCHEMAS = {
    "parent": "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "jobType": "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "sql": "1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
    "schema": "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "dataQualityAssertions": "1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet",
    "outputStatistics": "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
    "columnLineage": "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
}
# lakebox's run ids are readable (orders-20260101T000000-ab12cd); OpenLineage wants UUIDs, so
# each is mapped to a stable UUID, the same every time it is named (parent facets, retries).
_RUN_NAMESPACE = uuid.UUID("6f1c1d3e-2b7a-4c55-9a43-0c1f5e1b7a10")


def run_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_RUN_NAMESPACE, "/".join(parts)))


def facet(name: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": _FACETS + FACET_SCHEMAS[name], **fields}


def event_time(at: dt.datetime | None = None) -> str:
    """ISO-8601 with a zone; lakebox's audit times are naive UTC."""
    at = at or dt.datetime.now(dt.UTC)
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).isoformat()


def run_event(
    event_type: str, at: dt.datetime | None, namespace: str, job: str, run_id: str, *,
    parent: tuple[str, str] | None = None, root: tuple[str, str] | None = None, job_type: str = "TASK",
    error: str | None = None, sql: str | None = None,
    inputs: Sequence[dict[str, Any]] = (), outputs: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """One RunEvent; `parent`/`root` are (job name, run id) of the run that spawned this one."""
    run_facets: dict[str, Any] = {}
    if parent is not None:
        linked: dict[str, Any] = {"run": {"runId": parent[1]}, "job": {"namespace": namespace, "name": parent[0]}}
        if root is not None:
            linked["root"] = {"run": {"runId": root[1]}, "job": {"namespace": namespace, "name": root[0]}}
        run_facets["parent"] = facet("parent", **linked)
    if error is not None:
        run_facets["errorMessage"] = facet("errorMessage", message=error, programmingLanguage="python")
    job_facets: dict[str, Any] = {
        "jobType": facet("jobType", processingType="BATCH", integration="LAKEBOX", jobType=job_type)}
    if sql is not None:
        job_facets["sql"] = facet("sql", query=sql)
    return {
        "eventType": event_type, "eventTime": event_time(at), "producer": PRODUCER, "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": namespace, "name": job, "facets": job_facets},
        "inputs": list(inputs), "outputs": list(outputs),
    }


def dataset(namespace: str, name: str, *, fields: Sequence[tuple[str, str]] = (),
            rows: int | None = None, assertions: Sequence[dict[str, Any]] = (),
            column_lineage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dataset with the facets known for it: schema, row count (an output), dq assertions
    (an input checked by the gate), column lineage."""
    found: dict[str, Any] = {"namespace": namespace, "name": name, "facets": {}}
    if fields:
        found["facets"]["schema"] = facet("schema", fields=[{"name": n, "type": t} for n, t in fields])
    if column_lineage:
        found["facets"]["columnLineage"] = facet("columnLineage", **column_lineage)
    if rows is not None:
        found["outputFacets"] = {"outputStatistics": facet("outputStatistics", rowCount=int(rows))}
    if assertions:
        found["inputFacets"] = {"dataQualityAssertions": facet("dataQualityAssertions", assertions=list(assertions))}
    return found
