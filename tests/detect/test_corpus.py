"""Per-rule corpora: every default rule fires on its positives and not on its near misses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from logira.detect.loader import load_rules
from logira.detect.schema import SEVERITY_ORDER

CORPUS = Path(__file__).parent / "corpus"
RULESET = load_rules(site_dir=None)
RULE_FILES = sorted(p for p in CORPUS.glob("*.yaml") if p.name != "benign.yaml")


def _cases(kind: str) -> list[tuple[str, int, dict]]:
    out = []
    for p in RULE_FILES:
        doc = yaml.safe_load(p.read_text())
        for i, case in enumerate(doc.get(kind) or []):
            out.append((doc["rule"], i, case))
    return out


def _ids(cases: list[tuple[str, int, dict]]) -> list[str]:
    return [f"{r}-{i}" for r, i, _ in cases]


POS = _cases("positive")
NEG = _cases("negative")


def test_every_default_rule_has_a_corpus_with_two_positives_and_two_negatives() -> None:
    ids = {lr.rule.id for lr in RULESET.rules}
    docs = {yaml.safe_load(p.read_text())["rule"]: yaml.safe_load(p.read_text()) for p in RULE_FILES}
    assert sorted(ids - set(docs)) == []
    assert sorted(set(docs) - ids) == []
    thin = [
        r for r, d in docs.items() if len(d.get("positive") or []) < 2 or len(d.get("negative") or []) < 2
    ]
    assert thin == []


@pytest.mark.parametrize(("rule_id", "idx", "case"), POS, ids=_ids(POS))
def test_positive(rule_id: str, idx: int, case: dict, runner) -> None:
    fired = [d for d in runner.case(case) if d.rule_id == rule_id]
    assert fired, f"{rule_id} did not fire on {case}"
    d = fired[0]
    lr = RULESET.get(rule_id)
    assert lr is not None
    assert (d.severity, d.title, d.category, d.tags) == (
        lr.rule.severity,
        lr.rule.title,
        lr.rule.category,
        lr.rule.tags,
    )
    assert d.message and len(d.message) <= 300
    assert d.lineage and d.lineage[0].pid > 0


@pytest.mark.parametrize(("rule_id", "idx", "case"), NEG, ids=_ids(NEG))
def test_negative(rule_id: str, idx: int, case: dict, runner) -> None:
    fired = [d.message for d in runner.case(case) if d.rule_id == rule_id]
    assert fired == [], f"{rule_id} fired on near miss {case}"


def test_benign_agent_session_fires_nothing_above_info(runner) -> None:
    doc = yaml.safe_load((CORPUS / "benign.yaml").read_text())
    for case in doc["events"]:
        runner.event(case)
    loud = [(d.rule_id, d.message) for d in runner.detections if SEVERITY_ORDER[d.severity] > 0]
    assert loud == []
    assert len(runner.records) >= 40
