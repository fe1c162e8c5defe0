"""The Mermaid source of the architecture diagram: every label is inert text (hostile names
cannot add nodes, links, ``click`` handlers or HTML), and it shows what the plan chose."""

from __future__ import annotations

import html
import json
import re

import pytest

from app.planner.plan import Plan, make_plan
from app.requirements.examples import example_text, load_example
from app.requirements.spec import WorkloadSpec
from app.web.architecture import MAX_NODES, architecture_mermaid, mermaid_text

HOSTILE_NAME = 'Evil"]; click X "javascript:x()" %% #quot; <img src=x onerror=alert(1)>\nend'
HOSTILE_LOCATION = 's3://b/"]) --> Z{{x}} ; style src1 fill:#f00; `md` & [link](y) |pipe|'

SHAPES = r'(?:\[\(|\(\[|\[\[|\{\{|\[|\()"[^"]*"(?:\)\]|\]\)|\]\]|\}\}|\]|\))'
LINE = re.compile(
    r"^(?:flowchart (?:LR|TB)"
    r'|  subgraph g_\w+ \["[^"]*"\]'
    r"|    direction LR"
    rf"|    \w+{SHAPES}"
    r"|  end"
    r'|  \w+ (?:-->|-\.->|<-\.->|==>)(?:\|"[^"]*"\|)? \w+)$'
)


def _decode(label: str) -> list[str]:
    """What Mermaid shows for a label: entity codes decoded, one string per line."""
    text = label.replace("<b>", "").replace("</b>", "")
    # one pass, like Mermaid's encodeEntities/decodeEntities: "#35;quot#59;" shows "#quot;"
    text = re.sub(r"#(\w+);", lambda m: chr(int(m.group(1))) if m.group(1).isdigit()
                  else html.unescape(f"&{m.group(1)};"), text)
    return text.split("<br/>")


@pytest.fixture(scope="module")
def hostile() -> tuple[WorkloadSpec, Plan, str]:
    text = example_text("vision-growing-inference")
    text = re.sub(r"^name: .*$", "name: " + json.dumps(HOSTILE_NAME), text, count=1, flags=re.MULTILINE)
    text = text.replace("location: s3://retail-vision/shelf-images/", "location: " + json.dumps(HOSTILE_LOCATION))
    spec = WorkloadSpec.from_yaml(text)
    assert spec.name == " ".join(HOSTILE_NAME.split()) and spec.architecture.data_sources[0].location == HOSTILE_LOCATION
    spec = spec.model_copy(update={"name": HOSTILE_NAME})  # and should a raw line break ever get through
    from app.catalog.schema import load_snapshot

    plan = make_plan(spec, load_snapshot(), baselines=False)
    assert plan.status == "optimal"
    return spec, plan, architecture_mermaid(spec, plan)


def test_every_line_is_generated_syntax(hostile) -> None:
    _spec, _plan, source = hostile
    lines = source.rstrip("\n").split("\n")
    bad = [ln for ln in lines if not LINE.match(ln)]
    assert bad == []  # no injected statement, node, link, click or style survives
    assert not any(ln.lstrip().startswith(("click", "style", "classDef", "%%")) for ln in lines)


def test_labels_hold_no_syntax_characters(hostile) -> None:
    _spec, _plan, source = hostile
    labels = re.findall(r'"([^"]*)"', source)
    assert labels
    for label in labels:
        bare = re.sub(r"#\w+;", "", label.replace("<b>", "").replace("</b>", "").replace("<br/>", ""))
        assert not set(bare) & set('"\'`#;:%&<>[](){}|\\\n\r\t'), label


def test_hostile_text_round_trips_as_text(hostile) -> None:
    spec, _plan, source = hostile
    shown = [line for label in re.findall(r'"([^"]*)"', source) for line in _decode(label)]
    assert " ".join(HOSTILE_NAME.split()) in shown  # the DAG's name, on one line
    assert HOSTILE_LOCATION in shown
    assert mermaid_text("#quot;") == "#35;quot#59;"


def test_the_plan_choices_are_drawn(hostile) -> None:
    spec, plan, source = hostile
    shown = "\n".join(line for label in re.findall(r'"([^"]*)"', source) for line in _decode(label))
    for s in plan.schedule:
        assert f"Reserved · {s.item}" in shown and f"AWS · {s.region}" in shown
    for u in plan.usage:
        assert f"{ {'on_demand': 'On-demand', 'spot': 'Spot'}[u.kind]} · {u.item}" in shown
    assert "reserved at once (12-month term)" in shown and "instance-hours" in shown
    for part in ("Data sources", "Data quality checks", "Pipeline stages", "Training", "Serving", "Storage",
                 "Orchestration", "Compute (this plan)"):
        assert part in shown
    for st in spec.architecture.pipeline.stages:
        assert st.name in shown
    assert "  st5 --> tr1" in source and "  st8 --> sv1" in source  # train → run, deploy → service
    assert "  g_training ==>|" in source and "g_compute" in source


def test_long_lists_are_capped_and_empty_plans_say_so() -> None:
    spec = load_example("research-burst-deadline")
    src = spec.architecture.data_sources[0]
    many = [src.model_copy(update={"name": f"source-{i}"}) for i in range(MAX_NODES + 5)]
    spec = spec.model_copy(update={"architecture": spec.architecture.model_copy(update={"data_sources": many})})
    source = architecture_mermaid(spec, Plan(spec_name=spec.name, snapshot_id="s"))
    assert f"source-{MAX_NODES - 1}" in source and f"source-{MAX_NODES}<" not in source
    assert 'g_sources_more["+ 5 more"]' in source
    assert "No GPU capacity" in source
    assert architecture_mermaid(spec, Plan(spec_name="x", snapshot_id="s"), "TB").startswith("flowchart TB\n")
    with pytest.raises(ValueError):
        architecture_mermaid(spec, Plan(spec_name="x", snapshot_id="s"), "RL")  # type: ignore[arg-type]
