"""The judge-LLM metrics on hand-built episodes with scripted verdicts."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from raggym.agents.judge import RAGJudge, failure_counts, judge_episodes, parse_grade, parse_verdict
from raggym.agents.llm.base import Message
from raggym.testing.llms import MockLLM
from raggym_env.episode import EpisodeRecord, RetrievedDoc, StepRecord

DOCS = {"d1": "Paris is the capital of France.", "d2": "Bananas are yellow."}


def _record(example_id: str, answer: str | None, ids: Sequence[str], error: str | None = None):
    steps = [
        StepRecord(
            index=0,
            action={"type": "search", "text": "capital"},
            retrieved=[RetrievedDoc(i, f"T{i}", 1.0) for i in ids],
        )
    ]
    if answer is not None:
        steps.append(StepRecord(index=1, action={"type": "answer", "text": answer}))
    return EpisodeRecord(
        env_id="RAGGym/Custom-v0", env_version=0, example_id=example_id,
        question="What is the capital of France?", steps=steps, final_answer=answer,
        error=error,
    )  # fmt: skip


def _judge(replies: dict[str, str]) -> MockLLM:
    """Reply by prompt kind; a document prompt by the document it shows."""

    def respond(conversation: Sequence[Message]) -> str:
        prompt = conversation[-1]["content"]
        if "fully supported" in prompt:
            return replies["faith"]
        if "Score: N" in prompt:
            return replies["grade"]
        return replies["d1"] if "Paris is" in prompt else replies["d2"]

    return MockLLM(respond)


def test_known_scores_from_scripted_verdicts():
    llm = _judge(
        {
            "faith": "The first document says so.\nVerdict: SUPPORTED",
            "grade": "Score: 4",
            "d1": "Verdict: RELEVANT",
            "d2": "verdict: irrelevant.",
        }
    )
    [result] = judge_episodes([_record("q", "Paris", ["d1", "d2", "d1"])], RAGJudge(llm), DOCS)
    assert result["faithfulness"] == 1.0
    assert result["answer_relevance"] == 0.75
    assert result["context_relevance"] == 0.5  # d1 relevant, d2 not; the repeat counts once
    assert result["failures"] == {} and result["skipped"] == {}
    assert result["tokens"]["prompt"] > 0
    # One batched generate call for the four requests; documents' texts are shown.
    assert len(llm.calls) == 1 and len(llm.calls[0][0]) == 4
    assert "Paris is the capital" in llm.calls[0][0][0][-1]["content"]


def test_unsupported_and_malformed_verdicts_are_zero_and_missing():
    llm = _judge(
        {
            "faith": "Verdict: UNSUPPORTED",
            "grade": "five",
            "d1": "I'm sorry, I cannot help.",
            "d2": "Verdict: RELEVANT",
        }
    )
    [result] = RAGJudge(llm).score([_record("q", "Lyon", ["d1", "d2"])], DOCS)
    assert result["faithfulness"] == 0.0
    assert result["answer_relevance"] is None
    assert result["context_relevance"] is None  # one document unjudged: no partial fraction
    assert result["failures"]["answer_relevance"].startswith("unparseable")
    assert result["failures"]["context_relevance"].startswith("refusal")
    assert failure_counts([result]) == {"unparseable": 1, "refusal": 1, "total": 2}


def test_skips_do_not_count_as_failures():
    llm = _judge({"faith": "x", "grade": "Score: 1", "d1": "Verdict: RELEVANT", "d2": "x"})
    crashed, silent, blind = RAGJudge(llm).score(
        [
            _record("a", "Paris", ["d1"], error="RuntimeError: boom"),
            _record("b", None, ["d1"]),
            _record("c", "Paris", []),
        ],
        DOCS,
    )
    assert all(crashed[m] is None for m in ("faithfulness", "answer_relevance"))
    assert crashed["skipped"]["faithfulness"] == "the episode failed"
    assert silent["faithfulness"] is None and silent["context_relevance"] == 1.0
    assert blind["faithfulness"] == 0.0  # nothing retrieved supports the answer
    assert blind["answer_relevance"] == 0.0 and blind["context_relevance"] is None
    assert failure_counts([crashed, silent, blind]) == {}


def test_json_records_are_accepted_and_malformed_ones_rejected_before_any_call():
    from raggym_env.episode import SchemaError

    llm = _judge({"faith": "Verdict: SUPPORTED", "grade": "Score: 5", "d1": "RELEVANT", "d2": ""})
    [result] = RAGJudge(llm).score([_record("q", "Paris", ["d1"]).to_dict()], DOCS)
    assert (result["faithfulness"], result["context_relevance"]) == (1.0, 1.0)
    calls = len(llm.calls)
    with pytest.raises(SchemaError):
        RAGJudge(llm).score([{"schema_version": "1.0"}])
    assert len(llm.calls) == calls


def test_backend_exception_is_recorded_not_raised():
    def boom(conversation: Sequence[Message]) -> str:
        raise RuntimeError("backend down")

    [result] = RAGJudge(MockLLM(boom)).score([_record("q", "Paris", ["d1"])], DOCS)
    assert all(result[m] is None for m in ("faithfulness", "answer_relevance"))
    assert result["failures"]["faithfulness"] == "llm_error: RuntimeError: backend down"


def test_http_500_is_missing_and_counted():
    from raggym.agents.registry import make_llm
    from raggym.testing.fake_server import FaultPlan, fake_openai_server

    with fake_openai_server(faults=FaultPlan().always(500)) as server:
        llm = make_llm(f"openai:{server.url}:fake", max_retries=0)
        results = RAGJudge(llm).score([_record("q", "Paris", ["d1"])], DOCS)
    [result] = results
    assert result["faithfulness"] is None and result["context_relevance"] is None
    assert result["failures"]["faithfulness"].startswith("llm_error")
    assert failure_counts(results)["llm_error"] == 3


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Verdict: SUPPORTED", 1.0),
        ("reasoning...\n**Verdict: unsupported**", 0.0),
        ("supported", 1.0),
        ("Verdict: SUPPORTED\nVerdict: UNSUPPORTED", 0.0),  # the last verdict line wins
        ("Verdict: not supported", None),
        ("Verdict: MAYBE", None),
        ("", None),
        ("verdict:" * 10_000, None),
        ("x" * 20_000 + "\nVerdict: SUPPORTED", 1.0),
        ("x" * 20_000 + "Verdict: SUPPORTED", None),  # not a line of its own
    ],
    ids=[
        "plain",
        "bold",
        "bare",
        "last_wins",
        "negated",
        "other",
        "empty",
        "hostile",
        "long_reply",
        "cut_line",
    ],
)
def test_parse_verdict(text: str, value: float | None):
    got, reason = parse_verdict(text, {"supported": 1.0, "unsupported": 0.0})
    assert got == value
    assert (reason is None) == (value is not None)


@pytest.mark.parametrize(
    ("text", "value"),
    [("Score: 5", 1.0), ("score = 1", 0.0), ("Score: 3/5", 0.5), ("Score: 7", None), ("4", None)],
)
def test_parse_grade(text: str, value: float | None):
    assert parse_grade(text)[0] == value


def test_bad_arguments_raise_clearly():
    from raggym.agents.llm.base import SamplingParams

    with pytest.raises(TypeError, match="generate"):
        RAGJudge(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n=2"):
        RAGJudge(MockLLM(lambda c: ""), sampling=SamplingParams(n=2))
    with pytest.raises(ValueError, match="batch_size"):
        RAGJudge(MockLLM(lambda c: ""), batch_size=0)


@pytest.mark.parametrize(
    "text",
    [
        "Verdict:" + " " * 1_000_000 + "x",
        "\n" * 1_000_000,
        "Verdict: :" * 100_000,
        "Score: " * 150_000,
        ("Verdict: SUPPORTED\n" + "!" * 150) * 5_000,
    ],
    ids=["spaces", "newlines", "colons", "score_labels", "long_lines"],
)
def test_verdict_parsers_read_a_megabyte_in_linear_time(text: str):
    import time

    tick = time.perf_counter()
    parse_verdict(text, {"supported": 1.0, "unsupported": 0.0})
    parse_grade(text)
    assert time.perf_counter() - tick < 0.5
