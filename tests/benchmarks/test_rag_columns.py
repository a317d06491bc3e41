"""RAG quality columns in leaderboards: gold-evidence metrics always, judge metrics on demand."""

from __future__ import annotations

import json

from raggym.benchmarks.aggregate import aggregate_cell
from raggym.benchmarks.leaderboard import load_leaderboard
from raggym.benchmarks.runner import judge_path, run_suite
from raggym.benchmarks.suite import load_suite
from raggym.benchmarks.tables import full_table
from raggym.testing.fake_server import FaultPlan, fake_openai_server
from raggym_env.cli import main
from raggym_env.episode import EpisodeRecord, RetrievedDoc, StepRecord

SUITE = (
    'name = "judged"\nbatch_size = 4\n'
    '[[datasets]]\ntask = "hotpotqa"\nselect = "first:2"\n'
    '[[agents]]\nagent = "heuristic"\n'
)


def _record(example_id: str, ids: list[str], gold: list[str], error: str | None = None):
    steps = [
        StepRecord(index=0, action={"type": "search", "text": "q"},
                   retrieved=[RetrievedDoc(i, i, 1.0) for i in ids]),
        StepRecord(index=1, action={"type": "answer", "text": "x"}),
    ]  # fmt: skip
    return EpisodeRecord(
        env_id="RAGGym/Custom-v0", env_version=0, example_id=example_id, question="?",
        steps=steps, final_answer="x", gold={"evidence_doc_ids": gold}, error=error,
    )  # fmt: skip


def _cell(records, ids, judged=None):
    return aggregate_cell(
        records, ids, dataset="d", agent="a", task="custom", multiple_choice=False,
        judged=judged,
    )  # fmt: skip


def test_denominators_by_hand():
    records = [
        _record("q1", ["g1", "x"], ["g1", "g2"]),  # precision 1, recall 1/2
        _record("q2", ["x", "g3"], ["g3"]),  # precision 1/2, recall 1
        _record("q3", ["x"], []),  # no gold evidence: left out
        _record("q4", ["g4"], ["g4"], error="RuntimeError: boom"),  # failed: counts 0
    ]
    judged = {
        "q1": {"faithfulness": 1.0, "answer_relevance": 0.5, "context_relevance": 0.5},
        "q2": {"faithfulness": None, "answer_relevance": 1.0, "context_relevance": 1.0,
               "failures": {"faithfulness": "unparseable: 'x'"}},
        "q3": {"faithfulness": 0.0, "answer_relevance": 0.0, "context_relevance": None},
    }  # fmt: skip
    cell = _cell(records, ["q1", "q2", "q3", "q4", "q5"], judged)  # q5: no episode, counts 0
    m = cell.metrics
    assert m["context_precision"] == (1.0 + 0.5 + 0 + 0) / 4
    assert m["context_recall"] == (0.5 + 1.0 + 0 + 0) / 4
    assert m["faithfulness"] == (1.0 + 0.0 + 0 + 0) / 4  # q2's failed judgement left out
    assert m["answer_relevance"] == (0.5 + 1.0 + 0.0 + 0 + 0) / 5
    assert m["context_relevance"] == (0.5 + 1.0 + 0 + 0) / 4
    assert m["judge_failures"] == 1.0
    assert {"context_precision", "faithfulness"} <= set(cell.ci95)


def test_without_gold_or_judge_the_columns_are_missing_not_zero():
    cell = _cell([_record("q1", ["x"], [])], ["q1"])
    assert cell.metrics["context_precision"] is None and cell.metrics["context_recall"] is None
    assert cell.metrics["faithfulness"] is None and cell.metrics["judge_failures"] is None
    # Every judgement failed: missing, never 0.
    judged = {"q1": {"faithfulness": None, "failures": {"faithfulness": "llm_error: 500"}}}
    cell = _cell([_record("q1", ["g"], ["g"])], ["q1"], judged)
    assert cell.metrics["faithfulness"] is None and cell.metrics["judge_failures"] == 1.0
    assert cell.metrics["context_precision"] == 1.0


def _verdicts(messages, _index):
    prompt = messages[-1]["content"]
    if "fully supported" in prompt:
        return "Verdict: SUPPORTED"
    if "Score: N" in prompt:
        return "Score: 5"
    return "Verdict: RELEVANT"


def test_bench_with_a_judge_shows_the_columns_and_resumes(tmp_path, capsys):
    suite_file = tmp_path / "judged.toml"
    suite_file.write_text(SUITE)
    out = tmp_path / "run"
    with fake_openai_server(_verdicts) as server:
        args = ["bench", str(suite_file), "--judge", f"openai:{server.url}:judge",
                "--out", str(out)]  # fmt: skip
        assert main(args) == 0
        calls = server.stats.requests
        assert calls > 0
        # A rerun reuses the judgements.
        suite, spec = load_suite(str(suite_file)), f"openai:{server.url}:judge"
        board, _ = run_suite(suite, out, judge=spec, progress=None, reports=False)
        assert server.stats.requests == calls
        assert board.cells[0].metrics["faithfulness"] == 1.0
    printed = capsys.readouterr().out
    assert "faithful" in printed and "ctx.prec" in printed and "0 failed judgements" in printed
    [cell] = load_leaderboard(out).cells
    assert cell.metrics["faithfulness"] == 1.0 and cell.metrics["answer_relevance"] == 1.0
    assert cell.metrics["context_relevance"] == 1.0 and cell.metrics["judge_failures"] == 0
    assert 0 < cell.metrics["context_recall"] <= 1 and cell.metrics["context_precision"] > 0
    saved = json.loads(judge_path(out, "hotpotqa", "heuristic").read_text())
    assert len(saved["results"]) == 2
    table = full_table(load_leaderboard(out))
    assert "ctx.recall" in table.columns and "judge fails" in table.columns


def test_a_failing_judge_leaves_missing_values_and_counts_them(tmp_path):
    suite_file = tmp_path / "judged.toml"
    suite_file.write_text(SUITE + '[judge]\nspec = "openai:http://127.0.0.1:9/v1:x"\n')
    out = tmp_path / "run"
    with fake_openai_server(_verdicts, faults=FaultPlan().always(500)) as server:
        suite_file.write_text(
            SUITE + f'[judge]\nspec = "openai:{server.url}:judge"\noptions = {{max_retries = 0}}\n'
        )
        assert main(["bench", str(suite_file), "--out", str(out)]) == 0
        [cell] = load_leaderboard(out).cells
        assert cell.metrics["faithfulness"] is None and cell.metrics["context_relevance"] is None
        assert cell.metrics["judge_failures"] > 0
        assert cell.metrics["context_recall"] is not None  # needs no judge
        # The judge recovers: a rerun judges the failed episodes again.
        server.faults.clear()
        assert main(["bench", str(suite_file), "--out", str(out)]) == 0
    [cell] = load_leaderboard(out).cells
    assert cell.metrics["faithfulness"] == 1.0 and cell.metrics["judge_failures"] == 0


def test_a_corrupt_judge_cache_is_judged_again(tmp_path):
    from raggym.agents.judge import RAGJudge
    from raggym.benchmarks.runner import _judge_cell
    from raggym.testing.llms import MockLLM

    llm = MockLLM(lambda conversation: _verdicts(conversation, 0))
    judge, path = RAGJudge(llm), tmp_path / "judge.json"
    records = [_record("q1", ["g"], ["g"])]
    for garbage in ("{not json", "[1, 2]", '{"results": {"q1": {"digest": 3, "result": 1}}}'):
        path.write_text(garbage)
        calls = len(llm.calls)
        judged = _judge_cell(judge, records, None, path)
        assert judged["q1"]["faithfulness"] == 1.0 and len(llm.calls) == calls + 1
    _judge_cell(judge, records, None, path)  # now valid: reused, no call
    assert len(llm.calls) == 3


def test_suite_judge_key_forms_and_errors():
    import pytest

    from raggym.benchmarks.suite import SuiteError, parse_suite

    plain = parse_suite(SUITE)
    assert plain.judge.spec is None and plain.to_dict()["judge"]["spec"] is None
    assert parse_suite(SUITE.replace("batch_size", 'judge = "vllm:m"\nbatch_size')).judge.spec == (
        "vllm:m"
    )
    table = parse_suite(SUITE + '[judge]\nspec = "hf:/m"\noptions = {max_new_tokens = 8}\n')
    assert table.judge.spec == "hf:/m" and dict(table.judge.options) == {"max_new_tokens": 8}
    assert plain.with_overrides(judge="openai:http://h/v1:j").judge.spec == "openai:http://h/v1:j"
    with pytest.raises(SuiteError, match="judge"):
        parse_suite(SUITE.replace("batch_size", 'judge = "gpt4"\nbatch_size'))
    with pytest.raises(SuiteError, match="unknown key 'spek'"):
        parse_suite(SUITE + '[judge]\nspek = "hf:/m"\n')


def test_compare_shows_and_pairs_the_gold_evidence_and_judge_metrics(tmp_path, capsys):
    import shutil

    from raggym.benchmarks.cli import compare_paired

    suite_file = tmp_path / "judged.toml"
    suite_file.write_text(SUITE)
    a, b = tmp_path / "a", tmp_path / "b"
    with fake_openai_server(_verdicts) as server:
        assert (
            main(["bench", str(suite_file), "--judge", f"openai:{server.url}:j", "--out", str(a)])
            == 0
        )
    shutil.copytree(a, b)
    path = judge_path(b, "hotpotqa", "heuristic")
    saved = json.loads(path.read_text())
    first, second = sorted(saved["results"])
    saved["results"][first]["result"]["faithfulness"] = 0.0  # B's judge found it unsupported
    saved["results"][second]["digest"] = "stale"  # made for another episode: not counted
    path.write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "faithful A" in text and "ctx.prec A" in text  # side by side
    assert "faithful Δ [95% CI]" in text and "ctx.recall Δ [95% CI]" in text  # paired
    [cell] = compare_paired(load_leaderboard(a), load_leaderboard(b), a, b).cells
    faithful = cell.results["faithfulness"]
    assert (faithful.n, faithful.diff) == (1, -1.0)  # the stale judgement is left out
    assert cell.results["answer_relevance"].n == 1
    assert cell.results["context_recall"].n == 2 and cell.results["context_recall"].diff == 0
