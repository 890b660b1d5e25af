"""OpenLineage for the county pipeline: which bureau file fed which staging table, which tables
the snapshot was built from, which views show it.

The pipeline's tasks are plain Python (@task): the OpenLineage provider has no extractor that
knows what they read and wrote. Each task therefore names its inputs and outputs when it has
run (`record`), and `CountyTaskExtractor`, registered as an OpenLineage custom extractor, turns
those names (transforms.pipeline.lineage's URIs) and the task's declared inlets and outlets into
the datasets of the task's COMPLETE event. The extractor runs in the task's own process (the
OpenLineage listener is called there when the task ends), so a record kept in that process,
keyed by the task instance (transforms.pipeline.lineage.remember), is enough: not Airflow's hook
lineage collector, which is one per process and would mix the tasks of an `airflow dags test`
run.

Off unless OpenLineage is configured: with no transport the provider is disabled, `enabled()`
is False and the tasks skip the look-ups.
Turn it on with a transport and this extractor, e.g.

    AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "http", "url": "http://marquez:5000"}'
    AIRFLOW__OPENLINEAGE__EXTRACTORS=county_lineage.CountyTaskExtractor
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow.providers.openlineage import conf as openlineage_conf
from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from airflow.sdk import Asset
from openlineage.client.event_v2 import Dataset

from transforms.pipeline import lineage

TaskKey = tuple[str, str, str, int]  # dag_id, run_id, task_id, map_index


def _key(task_instance: Any) -> TaskKey:
    map_index = getattr(task_instance, "map_index", -1)
    return (
        str(task_instance.dag_id),
        str(task_instance.run_id),
        str(task_instance.task_id),
        -1 if map_index is None else int(map_index),
    )


def enabled() -> bool:
    """Whether OpenLineage is configured (a transport is set and it is not disabled)."""
    return not openlineage_conf.is_disabled()


def record(task_instance: Any, inputs: Iterable[str], outputs: Iterable[str]) -> None:
    """Name what the running task read and wrote (URIs of transforms.pipeline.lineage)."""
    lineage.remember(_key(task_instance), lineage.Lineage(tuple(inputs), tuple(outputs)))


def to_dataset(uri: str) -> Dataset | None:
    """An OpenLineage dataset for one of the pipeline's URIs (None for anything else).

    file:///a/b.csv -> (file, /a/b.csv); warehouse://county/stg_x -> (warehouse://county, stg_x);
    platform://lankao/v_x -> (platform://lankao, v_x)."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Dataset(namespace="file", name=unquote(parts.path))
    if parts.scheme in ("warehouse", "platform") and parts.netloc and parts.path.strip("/"):
        return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.strip("/"))
    return None


def _datasets(uris: Iterable[str]) -> list[Dataset]:
    found: dict[tuple[str, str], Dataset] = {}
    for uri in uris:
        dataset = to_dataset(uri)
        if dataset is not None:
            found.setdefault((dataset.namespace, dataset.name), dataset)
    return list(found.values())


def _declared(objects: Iterable[Any]) -> list[str]:
    return [o.uri for o in objects if isinstance(o, Asset)]


class CountyTaskExtractor(BaseExtractor):
    """The inputs and outputs of the county DAG's @task steps: what they recorded (`record`)
    and the assets they declare."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        # at the start only the declared assets are known
        return OperatorLineage(
            inputs=_datasets(_declared(self.operator.inlets)),
            outputs=_datasets(_declared(self.operator.outlets)),
        )

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        recorded = lineage.take(_key(task_instance))
        inputs = [*recorded.inputs, *_declared(self.operator.inlets)]
        outputs = [*recorded.outputs, *_declared(self.operator.outlets)]
        return OperatorLineage(inputs=_datasets(inputs), outputs=_datasets(outputs))
