import pytest

from raggym.agents.critics.base import Critic, CriticItem
from raggym.agents.critics.gold import UNPARSED_SCORE, GoldEvidenceCritic
from raggym.testing.retriever import FakeRetriever
from raggym_env import Answer, Evidence, QAExample, Search
from raggym_env.retrieval.base import RetrievalError

COMPARISON = QAExample(
    id="q1",
    question="Were Scott Derrickson and Ed Wood of the same nationality?",
    answers=("yes",),
    evidence=Evidence(titles=("Scott Derrickson", "Ed Wood"), doc_ids=("d1", "d2")),
)
WHO = QAExample(
    id="q2",
    question="Who directed Doctor Strange?",
    answers=("Scott Derrickson",),
    evidence=Evidence(doc_ids=("d1",)),
)
CHOICE = QAExample(
    id="q3",
    question="Which city is the capital of France?",
    answers=("A", "Paris"),
    options={"A": "Paris", "B": "Lyon"},
    answer_letter="A",
    evidence=Evidence(doc_ids=("d3",)),
)
NO_GOLD = QAExample(id="q4", question="What launched Voyager 2?", answers=("Titan IIIE",))


def observation(example, seen=()):
    history = (
        (
            {
                "query": "earlier",
                "documents": tuple({"id": i, "title": i, "text": "t"} for i in seen),
            },
        )
        if seen
        else ()
    )
    options = tuple({"letter": k, "text": v} for k, v in (example.options or {}).items())
    return {
        "question": example.question,
        "options": options,
        "history": history,
        "steps_remaining": 3,
    }


def search(query, example=COMPARISON, seen=()):
    return CriticItem(
        observation(example, seen), f"Search: {query}", Search(query), example=example
    )


def answer(text, example=COMPARISON):
    return CriticItem(observation(example), f"Answer: {text}", Answer(text), example=example)


@pytest.fixture
def retriever(tiny_corpus):
    return FakeRetriever(tiny_corpus)


def scores(result):
    return [[s.score for s in group] for group in result]


def test_a_query_that_retrieves_gold_beats_one_that_does_not(retriever):
    critic = GoldEvidenceCritic(retriever, k=1)
    assert isinstance(critic, Critic) and critic.name == "gold_evidence"
    result = critic.score([[search("Ed Wood filmmaker"), search("capital of France")]])
    assert scores(result) == [[0.5, 0.0]]  # one of the two gold documents
    assert result[0][0].output == "d2" and result[0][1].output == ""
    both = GoldEvidenceCritic(retriever, k=2).score([[search("Scott Derrickson Ed Wood American")]])
    assert scores(both) == [[1.0]]


def test_gold_already_in_the_history_adds_nothing(retriever):
    critic = GoldEvidenceCritic(retriever, k=2)
    result = critic.score(
        [
            [
                search("Scott Derrickson director", seen=("d1",)),
                search("Ed Wood American", seen=("d1",)),  # finds d2 (new) and d1 (seen)
                search("Ed Wood American"),
            ]
        ]
    )
    assert scores(result) == [[0.0, 0.5, 1.0]]
    assert result[0][1].output == "d2"


def test_answers_score_f1_for_open_questions_and_accuracy_for_choices(retriever):
    critic = GoldEvidenceCritic(retriever)
    result = critic.score(
        [
            [answer("yes"), answer("no")],
            [answer("Derrickson", WHO), answer("Scott Derrickson", WHO)],
            [answer("A", CHOICE), answer("B", CHOICE), answer("Paris", CHOICE)],
        ]
    )
    assert scores(result) == [[1.0, 0.0], [pytest.approx(2 / 3), 1.0], [1.0, 0.0, 1.0]]
    assert [s.output for s in result[1]] == ["f1", "f1"]
    assert [s.output for s in result[2]] == ["accuracy"] * 3
    assert retriever.calls == []  # no searches, no retrieval


def test_unparsed_candidates_score_below_any_valid_action(retriever):
    unparsed = CriticItem(observation(COMPARISON), "hmm", None, example=COMPARISON)
    result = GoldEvidenceCritic(retriever).score([[unparsed, answer("no"), search("Paris")]])
    assert result[0][0].score == UNPARSED_SCORE == -1.0
    assert result[0][0].score < min(s.score for s in result[0][1:])


def test_all_queries_of_all_groups_go_in_one_deduplicated_call(retriever):
    critic = GoldEvidenceCritic(retriever, k=1)
    groups = [
        [search("Ed Wood"), search("Scott Derrickson"), answer("yes")],
        [search("Ed Wood", WHO), search("Paris", CHOICE)],
        [search("Scott Derrickson", WHO, seen=("d1",))],
    ]
    result = critic.score(groups)
    assert retriever.calls == [["Ed Wood", "Scott Derrickson", "Paris"]]
    assert scores(result) == [[0.5, 0.5, 1.0], [0.0, 1.0], [0.0]]


def test_retrieval_error_is_recorded_for_searches_only(tiny_corpus):
    retriever = FakeRetriever(tiny_corpus, fail_on=RetrievalError("index unreachable"))
    result = GoldEvidenceCritic(retriever).score([[search("Ed Wood"), answer("yes")]])
    failed, answered = result[0]
    assert failed.score is None and failed.error == "RetrievalError: index unreachable"
    assert answered.score == 1.0 and answered.error is None
    assert len(retriever.calls) == 1


def test_other_retriever_exceptions_propagate(tiny_corpus):
    retriever = FakeRetriever(tiny_corpus, fail_on=TimeoutError("bug"))
    with pytest.raises(TimeoutError, match="bug"):
        GoldEvidenceCritic(retriever).score([[search("Ed Wood")]])


def test_a_question_without_gold_ids_cannot_score_searches(retriever):
    result = GoldEvidenceCritic(retriever).score(
        [[search("Voyager rocket", NO_GOLD), answer("Titan IIIE", NO_GOLD)]]
    )
    assert result[0][0].score is None and "no gold evidence doc ids" in result[0][0].error
    assert result[0][1].score == 1.0
    assert retriever.calls == []  # its query was never sent


def test_gold_is_required(retriever):
    blind = CriticItem(observation(COMPARISON), "Answer: yes", Answer("yes"))
    with pytest.raises(ValueError, match="example"):
        GoldEvidenceCritic(retriever).score([[answer("yes")], [blind]])
    assert GoldEvidenceCritic(retriever).score([]) == []


def test_misconfiguration_raises(retriever):
    with pytest.raises(ValueError, match="k must"):
        GoldEvidenceCritic(retriever, k=0)
    with pytest.raises(TypeError, match="search"):
        GoldEvidenceCritic(object())
