import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import re
import time

import pytest

from raggym.agents.critics.base import Critic, CriticItem, state_text
from raggym.agents.critics.llm_judge import LLMJudgeCritic, RankingParseError, parse_ranking
from raggym.agents.llm.base import Completion, SamplingParams
from raggym.agents.prompting import PromptError
from raggym.testing.llms import MockLLM
from raggym_env import Answer, Search

OBS = {
    "question": "Were Scott Derrickson and Ed Wood of the same nationality?",
    "options": (),
    "history": (
        {
            "query": "Scott Derrickson",
            "documents": ({"id": "d1", "title": "Scott Derrickson", "text": "An American."},),
        },
    ),
    "steps_remaining": 3,
}


def item(text, action, obs=OBS):
    return CriticItem(obs, text, action)


SEARCH_ED = item("Search: Ed Wood", Search("Ed Wood"))
SEARCH_ED_AGAIN = item("search[Ed Wood]", Search("Ed Wood"))  # same action, other text
ANSWER_YES = item("Answer: yes", Answer("yes"))
ANSWER_NO = item("Answer: no", Answer("no"))
GARBAGE = item("I think\nmaybe", None)


def shown_candidates(conversation):
    """The numbered candidate lines of a judge prompt, as {number: text}."""
    user = conversation[-1]["content"]
    return dict(re.findall(r"^(\d+)\. (.*)$", user, re.MULTILINE))


def ranking_from(table):
    """A judge that ranks shown candidates by the order of `table` (action text -> rank)."""

    def respond(conversation):
        shown = shown_candidates(conversation)
        ordered = sorted(shown, key=lambda n: table.index(shown[n]))
        return "They differ in usefulness.\nRanking: " + " > ".join(ordered)

    return respond


def test_ranks_candidates_and_scores_by_rank():
    table = ["Search: Ed Wood", "Answer: yes", "Answer: no"]
    llm = MockLLM(ranking_from(table), name="judge-llm")
    critic = LLMJudgeCritic(llm)
    assert isinstance(critic, Critic) and critic.name == "llm_judge"
    result = critic.score([[ANSWER_NO, SEARCH_ED, ANSWER_YES]])
    assert [s.score for s in result[0]] == [pytest.approx(1 / 3), 1.0, 0.5]
    assert all(s.error is None and s.output.endswith("Ranking: 2 > 3 > 1") for s in result[0])
    ((conversations, params),) = llm.calls
    assert params == SamplingParams(n=1, temperature=0.0, max_tokens=256)
    user = conversations[0][-1]["content"]
    assert state_text(OBS) in user
    assert shown_candidates(conversations[0]) == {
        "1": "Answer: no",
        "2": "Search: Ed Wood",
        "3": "Answer: yes",
    }
    assert conversations[0][0]["role"] == "system"


def test_identical_candidates_are_shown_once_and_share_the_score():
    llm = MockLLM(lambda conversation: "Ranking: 2 > 1")
    result = LLMJudgeCritic(llm).score([[SEARCH_ED, ANSWER_YES, SEARCH_ED_AGAIN, SEARCH_ED]])
    assert [s.score for s in result[0]] == [0.5, 1.0, 0.5, 0.5]
    assert shown_candidates(llm.calls[0][0][0]) == {"1": "Search: Ed Wood", "2": "Answer: yes"}


def test_all_groups_go_in_one_call_and_single_candidate_groups_need_none():
    llm = MockLLM(lambda conversation: "Ranking: 1 > 2")
    groups = [
        [SEARCH_ED, ANSWER_YES],
        [ANSWER_NO, ANSWER_NO],  # one distinct candidate: no call
        [ANSWER_YES, ANSWER_NO],
        [],
        [GARBAGE],
    ]
    result = LLMJudgeCritic(llm).score(groups)
    assert len(llm.calls) == 1 and len(llm.calls[0][0]) == 2
    assert [[s.score for s in g] for g in result] == [[1.0, 0.5], [1.0, 1.0], [1.0, 0.5], [], [1.0]]
    assert result[1][0].output is None and result[1][0].error is None


def test_no_call_at_all_when_nothing_needs_judging():
    llm = MockLLM(lambda conversation: "unused")
    result = LLMJudgeCritic(llm).score([[ANSWER_NO], [SEARCH_ED, SEARCH_ED_AGAIN]])
    assert [[s.score for s in g] for g in result] == [[1.0], [1.0, 1.0]]
    assert llm.calls == []
    assert LLMJudgeCritic(llm).score([]) == []


def test_a_left_out_candidate_gets_no_score():
    raw = "Only two matter.\nRanking: 3 > 1"
    result = LLMJudgeCritic(MockLLM(lambda c: raw)).score([[SEARCH_ED, ANSWER_YES, ANSWER_NO]])
    first, missing, third = result[0]
    assert (first.score, third.score) == (0.5, 1.0)
    assert missing.score is None and missing.output == raw
    assert missing.error == "the judge left candidate 2 out of its ranking"


@pytest.mark.parametrize(
    "raw",
    [
        "I cannot decide.",
        "Ranking: first > second",
        "Ranking: 1 > 4",
        "Ranking: 1 > 1",
        "Ranking:",
        "Ranking: __import__('os').system('x')",
    ],
)
def test_unparsable_output_scores_nobody(raw):
    result = LLMJudgeCritic(MockLLM(lambda c: raw)).score([[SEARCH_ED, ANSWER_YES]])
    for verdict in result[0]:
        assert verdict.score is None
        assert verdict.output == raw
        assert verdict.error.startswith("RankingParseError: ")


class FailingLLM:
    name = "failing"

    def __init__(self):
        self.calls = 0

    def generate(self, conversations, params):
        self.calls += 1
        return [
            Completion(error="TimeoutError: judge timed out", attempts=3)
            if i == 0
            else Completion(texts=("Ranking: 2 > 1",))
            for i in range(len(conversations))
        ]


def test_a_failed_request_is_an_error_never_a_zero():
    llm = FailingLLM()
    result = LLMJudgeCritic(llm).score([[SEARCH_ED, ANSWER_YES], [ANSWER_NO, SEARCH_ED]])
    assert llm.calls == 1
    for verdict in result[0]:
        assert verdict.score is None and verdict.output is None
        assert verdict.error == "judge request failed: TimeoutError: judge timed out"
    assert [s.score for s in result[1]] == [0.5, 1.0]


def test_an_empty_completion_is_an_error():
    class Empty(FailingLLM):
        def generate(self, conversations, params):
            return [Completion() for _ in conversations]

    result = LLMJudgeCritic(Empty()).score([[SEARCH_ED, ANSWER_YES]])
    assert all(s.score is None and "no text" in s.error for s in result[0])


def test_a_backend_returning_the_wrong_count_raises():
    class Short(FailingLLM):
        def generate(self, conversations, params):
            return []

    with pytest.raises(RuntimeError, match="0 completions for 1"):
        LLMJudgeCritic(Short()).score([[SEARCH_ED, ANSWER_YES]])


def test_unparsed_candidates_are_shown_flagged():
    llm = MockLLM(lambda c: "Ranking: 1 > 2")
    result = LLMJudgeCritic(llm).score([[SEARCH_ED, GARBAGE]])
    assert shown_candidates(llm.calls[0][0][0])["2"] == "(not a valid action) I think maybe"
    assert [s.score for s in result[0]] == [1.0, 0.5]


@pytest.mark.parametrize(
    ("raw", "tiers"),
    [
        ("Ranking: 3 > 1 > 2", [[2], [0], [1]]),
        ("blah\nRanking: 1 > 2 > 3\nmore\n**Ranking:** [2] > #3 > Candidate 1.", [[1], [2], [0]]),
        ("ranking: 2, 3, 1", [[1], [2], [0]]),
        ("Final ranking: 2 = 1 > 3", [[1, 0], [2]]),
        ("Ranking: (3)", [[2]]),
    ],
)
def test_parse_ranking_forms(raw, tiers):
    assert parse_ranking(raw, 3) == tiers


def test_ties_share_the_better_rank():
    llm = MockLLM(lambda c: "Ranking: 2 = 1 > 3")
    result = LLMJudgeCritic(llm).score([[SEARCH_ED, ANSWER_YES, ANSWER_NO]])
    assert [s.score for s in result[0]] == [1.0, 1.0, pytest.approx(1 / 3)]


def test_parse_ranking_rejects_bad_lines():
    with pytest.raises(RankingParseError, match=r"not one of 1\.\.2"):
        parse_ranking("Ranking: 0 > 1", 2)
    with pytest.raises(RankingParseError, match="twice"):
        parse_ranking("Ranking: 2 = 2", 2)
    with pytest.raises(RankingParseError, match="no 'Ranking"):
        parse_ranking("", 2)


def test_custom_prompt_and_settings(tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text("# placeholders: candidates\n=== user ===\nPick:\n{candidates}\n")
    llm = MockLLM(lambda c: "Ranking: 2 > 1")
    critic = LLMJudgeCritic(llm, prompt=path, max_tokens=32, temperature=0.5, name="j")
    critic.score([[SEARCH_ED, ANSWER_YES]])
    conversation, params = llm.calls[0][0][0], llm.calls[0][1]
    assert conversation == [
        {"role": "user", "content": "Pick:\n1. Search: Ed Wood\n2. Answer: yes"}
    ]
    assert (params.max_tokens, params.temperature) == (32, 0.5)
    bad = tmp_path / "bad.txt"
    bad.write_text("# placeholders: question\n=== user ===\n{question}\n")
    with pytest.raises(PromptError, match="question"):
        LLMJudgeCritic(llm, prompt=bad)


def test_misconfiguration_raises():
    with pytest.raises(TypeError, match="LLM protocol"):
        LLMJudgeCritic(lambda conversations, params: [])
    with pytest.raises(ValueError, match="max_tokens"):
        LLMJudgeCritic(MockLLM(lambda c: ""), max_tokens=0)


@pytest.mark.parametrize("spaces", [1_000, 3_000, 1_000_000])
def test_parse_ranking_is_linear_on_long_runs_of_spaces(spaces):
    tick = time.perf_counter()
    with pytest.raises(RankingParseError, match="not a candidate number"):
        parse_ranking("Ranking: candidate" + " " * spaces + "x", 3)
    with pytest.raises(RankingParseError):
        parse_ranking("Ranking: " + "candidate " * (spaces // 10) + "1", 3)
    assert time.perf_counter() - tick < 1.0  # 3,000 spaces took 81 s


def test_parse_ranking_bounds_numbers_and_messages():
    with pytest.raises(RankingParseError, match=r"is not one of 1\.\.3") as caught:
        parse_ranking("Ranking: " + "9" * 5_000 + " > 1", 3)
    assert len(str(caught.value)) < 300
    assert parse_ranking("Ranking: 0002 > 1", 3) == [[1], [0]]
    with pytest.raises(RankingParseError, match="not a candidate number"):
        parse_ranking("Ranking: \u0663 > 1", 3)  # an Arabic-Indic digit is not a number here


def test_judge_replies_are_scrubbed_and_capped_before_they_are_stored():
    reply = "x" * 100_000 + "\ud800\nRanking: 2 > 1"
    critic = LLMJudgeCritic(MockLLM(lambda conversation: reply), max_reply_chars=1_000)
    (scores,) = critic.score([[SEARCH_ED, ANSWER_YES]])
    output = scores[0].output
    assert output.endswith("…[truncated 99,016 chars]") and len(output) < 1_100
    assert all(s.score is None for s in scores)  # the cut removed the ranking line
    critic = LLMJudgeCritic(MockLLM(lambda conversation: "\ud800 Ranking: 2 > 1"))
    (scores,) = critic.score([[SEARCH_ED, ANSWER_YES]])
    assert [s.score for s in scores] == [0.5, 1.0]
    assert scores[0].output == "\ufffd Ranking: 2 > 1"
    with pytest.raises(ValueError, match="max_reply_chars"):
        LLMJudgeCritic(MockLLM(lambda conversation: ""), max_reply_chars=0)
