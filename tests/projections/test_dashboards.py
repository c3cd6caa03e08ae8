"""The OpenSearch Dashboards saved objects only use fields the index templates define."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from omium.projections.opensearch import MAPPINGS, READ_MODELS, alias

DASHBOARDS = Path(__file__).resolve().parents[2] / "infra" / "dashboards"
_KUERY_FIELD = re.compile(r"([A-Za-z_][\w.]*)\s*:")
_NOT_AGGREGATABLE = {"text", "flat_object"}


def saved_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(DASHBOARDS.glob("*.ndjson")):
        objects += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return objects


def field_type(model: str, field: str) -> str | None:
    """The mapped type of ``field`` (``name.raw`` style sub-fields included), or ``None``."""
    top, _, sub = field.partition(".")
    mapping = MAPPINGS[model].get(top)
    if mapping is None:
        return None
    if sub:
        sub_type: str | None = mapping.get("fields", {}).get(sub, {}).get("type")
        return sub_type
    return str(mapping["type"])


def model_of(index_pattern_id: str, objects: list[dict[str, Any]]) -> str:
    title = next(o["attributes"]["title"] for o in objects if o["id"] == index_pattern_id)
    return next(m for m in READ_MODELS if alias("omium", m) == title)


def test_there_is_a_dashboard_with_index_patterns_for_every_read_model() -> None:
    objects = saved_objects()
    titles = {o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    assert titles == {alias("omium", m) for m in READ_MODELS}
    assert any(
        o["attributes"]["title"] == "Omium operations" for o in objects if o["type"] == "dashboard"
    )


def test_time_fields_exist_and_are_dates() -> None:
    objects = saved_objects()
    for pattern in (o for o in objects if o["type"] == "index-pattern"):
        model = model_of(pattern["id"], objects)
        assert field_type(model, pattern["attributes"]["timeFieldName"]) == "date"


@pytest.mark.parametrize(
    "visualization",
    [o for o in saved_objects() if o["type"] == "visualization"],
    ids=lambda o: o["id"],
)
def test_every_field_a_visualization_uses_is_mapped_and_aggregatable(
    visualization: dict[str, Any],
) -> None:
    objects = saved_objects()
    pattern = visualization["references"][0]["id"]
    model = model_of(pattern, objects)
    state = json.loads(visualization["attributes"]["visState"])
    for agg in state["aggs"]:
        field = agg["params"].get("field")
        if field is None:
            continue
        kind = field_type(model, field)
        assert kind is not None, f"{visualization['id']}: {field} is not in the {model} template"
        assert kind not in _NOT_AGGREGATABLE, f"{visualization['id']}: {field} is {kind}"
    search = json.loads(visualization["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    for field in _KUERY_FIELD.findall(search["query"]["query"]):
        assert field_type(model, field) is not None, f"query field {field} not in {model}"


def test_dashboard_panels_point_at_existing_visualizations() -> None:
    objects = saved_objects()
    ids = {o["id"] for o in objects if o["type"] == "visualization"}
    for dashboard in (o for o in objects if o["type"] == "dashboard"):
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
        refs = {r["name"]: r["id"] for r in dashboard["references"]}
        assert panels and all(refs[p["panelRefName"]] in ids for p in panels)
