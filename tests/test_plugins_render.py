"""Every built-in plugin, on a real sample, renders as text, JSON (valid
against docs/result-schema.json) and Markdown."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

import analyzer
import samples
from analyzer.plugin import discover
from analyzer.render import render

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = ("linux-6.1-sysrq", "vmcore.kdump-zlib")
ARGS = {"vtop": {"address": "init_task"}, "rd": {"address": "init_uts_ns", "length": 64},
        "dis": {"address": "sysrq_handle_crash"}, "log": {"tail": 20}, "bt": {"all": True}}


@pytest.fixture(scope="module")
def schema() -> dict:
    with open(os.path.join(ROOT, "docs", "result-schema.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def session():
    with analyzer.open(samples.path(*SAMPLE)) as s:
        yield s


@pytest.mark.parametrize("name", sorted(discover()))
def test_plugin_renders_everywhere(session, schema, name):
    cls = discover()[name]
    reason = cls.why_not(session, ARGS.get(name))
    if reason is not None:  # e.g. pcpus on a dump with no hypervisor: it must say why
        assert "needs" in reason
        with pytest.raises(Exception, match="cannot run"):
            session.run(name, **ARGS.get(name, {}))
        return
    result = session.run(name, **ARGS.get(name, {}))
    assert result.sections, name
    text = render(result, "text")
    md = render(result, "markdown")
    obj = json.loads(render(result, "json"))
    jsonschema.validate(obj, schema)
    assert text.strip() and md.startswith(f"### `{name}`")
    assert not result.partial or result.warnings


def test_triage_json_validates(session):
    from analyzer.triage import triage

    with open(os.path.join(ROOT, "docs", "triage-schema.json")) as f:
        jsonschema.validate(triage(session), json.load(f))
