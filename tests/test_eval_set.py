"""The evaluation sets behind the README's retrieval figures stay valid: every judged line exists,
is a record the product indexes, and holds its evidence; the pooled judgments too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.paths import FIXTURE_HOME, ROOT

sys.path.insert(0, str(ROOT / "bench"))
import quality


def test_every_judged_line_of_both_sets_and_of_the_pooled_judgments_holds_its_evidence() -> None:
    fixtures = quality.with_pooled(quality.load_queries(quality.DEFAULT_QUERIES))
    assert sum(len(q.relevant) for q in fixtures) > sum(len(q.relevant) for q in quality.load_queries(quality.DEFAULT_QUERIES))
    assert quality.check_set(fixtures, FIXTURE_HOME / "projects").problems == []
    near = quality.load_queries(quality.NEARMISS_QUERIES)
    assert quality.check_set(near, quality.NEARMISS_FIXTURES / "projects").problems == []


def _first_judgment() -> dict[str, object]:
    return dict(json.loads(quality.POOLED_JUDGMENTS.read_text(encoding="utf-8").splitlines()[0]))


def test_a_pooled_judgment_whose_line_lacks_its_evidence_is_reported(tmp_path: Path) -> None:
    wrong = tmp_path / "pooled.jsonl"
    wrong.write_text(json.dumps(_first_judgment() | {"evidence": "words this line never holds"}) + "\n", encoding="utf-8")
    queries = quality.with_pooled(quality.load_queries(quality.DEFAULT_QUERIES), wrong)
    problems = quality.check_set(queries, FIXTURE_HOME / "projects").problems
    assert len(problems) == 1 and "words this line never holds" in problems[0]


def test_pooled_judgments_for_a_question_the_set_lacks_are_refused(tmp_path: Path) -> None:
    stray = tmp_path / "pooled.jsonl"
    stray.write_text(json.dumps(_first_judgment() | {"id": "q999"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="q999"):
        quality.with_pooled(quality.load_queries(quality.DEFAULT_QUERIES), stray)
