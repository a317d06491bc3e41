import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import raggym_env
from raggym.testing.retriever import FakeRetriever
from raggym_env import Answer, QAExample, Search
from raggym_env.env import ENV_VERSION, RAGEnv
from raggym_env.retrieval.base import RetrievalError
from raggym_env.types import Evidence

BENCHMARK_IDS = [
    "RAGGym/HotpotQA-v0",
    "RAGGym/2WikiMultihopQA-v0",
    "RAGGym/Bamboogle-v0",
    "RAGGym/MedQA-v0",
]


@pytest.fixture(scope="module")
def tiny_examples():
    return [
        QAExample(
            id="q1",
            question="Were Scott Derrickson and Ed Wood of the same nationality?",
            answers=("yes",),
            evidence=Evidence(titles=("Scott Derrickson", "Ed Wood")),
        ),
        QAExample(
            id="q2",
            question="Which rocket launched the probe that approached Uranus?",
            answers=("Titan IIIE", "Titan 3E"),
            evidence=Evidence(titles=("Uranus",)),
        ),
        QAExample(
            id="q3",
            question="What is the capital of France?",
            answers=("Paris",),
            options={"A": "Lyon", "B": "Paris", "C": "Nice", "D": "Lille"},
            answer_letter="B",
        ),
    ]


def make_tiny(tiny_examples, tiny_corpus, **kwargs):
    kwargs.setdefault("retriever", FakeRetriever(tiny_corpus))
    return RAGEnv("custom", examples=tiny_examples, corpus=tiny_corpus, **kwargs)


@pytest.mark.parametrize("env_id", BENCHMARK_IDS)
def test_check_env_on_every_benchmark_id(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["history"] == ()
    assert obs["steps_remaining"] == 10
    env.close()


def test_check_env_on_custom_id(tiny_examples, tiny_corpus):
    env = gym.make("RAGGym/Custom-v0", examples=tiny_examples, corpus=tiny_corpus)
    check_env(env.unwrapped, skip_render_check=True)


def test_custom_id_without_data_says_what_is_needed():
    with pytest.raises(ValueError, match="custom task needs your questions"):
        gym.make("RAGGym/Custom-v0")


def test_registered_ids_are_versioned():
    assert set(BENCHMARK_IDS) | {"RAGGym/Custom-v0"} == set(raggym_env.ENV_IDS)
    for env_id in raggym_env.ENV_IDS:
        assert gym.spec(env_id).version == 0


def test_ids_and_records_take_their_version_from_env_version(tiny_examples, tiny_corpus):
    assert ENV_VERSION == 0  # a bump moves every id and the recorded env version together
    assert all(i.endswith(f"-v{ENV_VERSION}") for i in raggym_env.ENV_IDS)
    env = RAGEnv(examples=tiny_examples, corpus=tiny_corpus)
    assert env.env_id == f"RAGGym/HotpotQA-v{ENV_VERSION}"


def test_a_directly_built_env_records_the_id_gym_make_accepts():
    env = RAGEnv("hotpotqa", limit=2)
    assert env.env_id == "RAGGym/HotpotQA-v0"  # not RAGGym/hotpotqa-v0, which gym rejects
    made = gym.make(env.env_id, limit=2)
    assert made.spec is not None and made.spec.id == env.env_id


def test_same_seed_same_episode():
    def rollout(seed):
        env = gym.make("RAGGym/HotpotQA-v0")
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        trace = [info["example_id"]]
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            trace.append((obs["history"], reward, info["action"]["text"]))
            done = terminated or truncated
        return trace

    assert rollout(3) == rollout(3)
    ids = {rollout(s)[0] for s in range(6)}
    assert len(ids) > 1


def test_answer_terminates_and_scores(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    obs, info = env.reset(options={"example_id": "q2"})
    obs, reward, terminated, truncated, info = env.step(Search("Uranus probe rocket"))
    assert (terminated, truncated, reward) == (False, False, 0.0)
    assert obs["history"][0]["documents"][0]["title"] == "Uranus"
    assert obs["steps_remaining"] == 9
    assert "gold" not in info and "metrics" not in info
    assert info["evidence_recall"] == 1.0
    obs, reward, terminated, truncated, info = env.step("Answer: the Titan 3E")
    assert (terminated, truncated, reward) == (True, False, 1.0)
    assert info["metrics"]["em"] == 1.0
    assert info["metrics"]["f1"] == 1.0
    assert info["metrics"]["num_searches"] == 1.0
    assert info["gold"]["answers"] == ["Titan IIIE", "Titan 3E"]
    assert info["gold"]["evidence_doc_ids"] == ["d4"]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(Answer("again"))


def test_wrong_answer_reports_f1_and_zero_reward(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    env.reset(options={"example_id": "q2"})
    _, reward, terminated, _, info = env.step(Answer("Titan rocket"))
    assert terminated and reward == 0.0
    assert info["metrics"]["em"] == 0.0
    assert info["metrics"]["f1"] == pytest.approx(2 * 0.5 * 0.5 / 1.0)


def test_budget_exhaustion_truncates(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus, max_steps=3)
    env.reset(options={"index": 0})
    for step in range(3):
        obs, reward, terminated, truncated, info = env.step(Search(f"query {step}"))
    assert (terminated, truncated) == (False, True)
    assert obs["steps_remaining"] == 0
    assert info["answer"] is None
    assert info["metrics"]["em"] == 0.0
    with pytest.raises(RuntimeError):
        env.step(Search("more"))


def test_malformed_text_is_recorded_and_uses_a_step(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, info = env.step("I am not sure what to do")
    assert info["action"]["type"] == "invalid"
    assert "could not parse" in info["action_error"]
    assert obs["steps_remaining"] == 9 and obs["history"] == ()
    assert (reward, terminated, truncated) == (0.0, False, False)
    obs, *_ = env.step("Search:   ")
    assert obs["steps_remaining"] == 8


@pytest.mark.parametrize(
    "text",
    [
        "\u017fearch: x",
        "f\u0131nish[x]",
        "f\u0130nish[x]",
        '{"search": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"search": 1' + "1" * 5_000 + "}",
    ],
    ids=["long-s", "dotless-i", "dotted-I", "deep-json", "long-number"],
)
def test_any_text_is_an_action_or_a_recorded_invalid_step(tiny_examples, tiny_corpus, text):
    env = make_tiny(tiny_examples, tiny_corpus)
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, info = env.step(text)
    assert info["action"]["type"] == "invalid"
    assert isinstance(info["action_error"], str) and len(info["action_error"]) < 400
    assert obs["steps_remaining"] == 9 and (terminated, truncated) == (False, False)


def test_a_search_with_a_lone_surrogate_is_retrieved(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    env.reset(options={"index": 0})
    obs, _, _, _, info = env.step("Search: Ed Wood \ud800")
    assert info["action_error"] is None and info["retrieval_error"] is None
    assert len(obs["history"]) == 1


@pytest.mark.parametrize("bad", [42, None, {"search": "x"}, ["Search: x"], b"Search: x"])
def test_wrong_action_type_from_code_raises(tiny_examples, tiny_corpus, bad):
    env = make_tiny(tiny_examples, tiny_corpus)
    env.reset(options={"index": 0})
    with pytest.raises(TypeError, match="expects a Search, an Answer"):
        env.step(bad)


def test_multiple_choice_accuracy(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    obs, _ = env.reset(options={"example_id": "q3"})
    assert obs["options"][1] == {"letter": "B", "text": "Paris"}
    _, reward, terminated, _, info = env.step(Answer("The answer is (B)."))
    assert terminated and reward == 1.0
    assert info["metrics"]["accuracy"] == 1.0
    env.reset(options={"example_id": "q3"})
    _, reward, *_ = env.step(Answer("C"))
    assert reward == 0.0


def test_final_metrics_add_the_papers_scoring(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    env.reset(options={"example_id": "q2"})
    # Strict scoring takes the best alias; the paper's compares with the first gold only.
    _, reward, _, _, info = env.step(Answer("Titan 3E"))
    assert reward == 1.0 and info["metrics"]["em"] == 1.0
    assert info["metrics"]["paper_em"] == 0.0
    assert info["metrics"]["paper_f1"] == pytest.approx(0.5)
    assert "paper_acc" not in info["metrics"]
    # The paper's scoring locates the answer in a JSON-like object; strict scoring does not.
    env.reset(options={"example_id": "q2"})
    _, _, _, _, info = env.step(Answer('{"answer": "Titan IIIE"}'))
    assert info["metrics"]["em"] == 0.0 and info["metrics"]["paper_em"] == 1.0
    env.reset(options={"example_id": "q3"})
    _, _, _, _, info = env.step(Answer("The answer is (B)."))
    assert info["metrics"]["accuracy"] == info["metrics"]["paper_acc"] == 1.0
    # The paper's letter normaliser takes the first capital A-D: "Answer: (B)" reads as A.
    env.reset(options={"example_id": "q3"})
    _, _, _, _, info = env.step(Answer("Answer: (B)"))
    assert info["metrics"]["accuracy"] == 1.0 and info["metrics"]["paper_acc"] == 0.0


def test_process_rewards(tiny_examples, tiny_corpus):
    env = make_tiny(
        tiny_examples,
        tiny_corpus,
        reward={
            "evidence_gain": 1.0,
            "search_cost": 0.1,
            "repeat_penalty": 0.5,
            "invalid_action_penalty": 0.2,
        },
    )
    env.reset(options={"example_id": "q1"})
    _, reward, _, _, info = env.step(Search("Scott Derrickson"))
    assert info["reward_components"]["evidence_gain"] == pytest.approx(0.5)
    assert reward == pytest.approx(0.5 - 0.1)
    _, reward, *_ = env.step(Search("scott   DERRICKSON"))
    assert reward == pytest.approx(-0.1 - 0.5)
    _, reward, *_ = env.step("hmm")
    assert reward == pytest.approx(-0.2)
    _, reward, _, _, info = env.step(Answer("yes"))
    assert reward == 1.0 and info["reward_components"] == {"outcome": 1.0}


def test_default_rewards_are_outcome_only(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    env.reset(options={"example_id": "q1"})
    _, reward, _, _, info = env.step(Search("Scott Derrickson"))
    assert reward == 0.0 and info["reward_components"] == {}


def test_outcome_metric_choice(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus, reward="f1")
    env.reset(options={"example_id": "q2"})
    _, reward, *_ = env.step(Answer("Titan rocket"))
    assert reward == pytest.approx(0.5)
    with pytest.raises(ValueError, match="needs multiple-choice"):
        make_tiny(tiny_examples[:2], tiny_corpus, reward="accuracy")
    with pytest.raises(ValueError, match="unknown outcome reward"):
        make_tiny(tiny_examples, tiny_corpus, reward="bleu")
    with pytest.raises(ValueError, match="unknown reward settings"):
        make_tiny(tiny_examples, tiny_corpus, reward={"gain": 1})


def test_retrieval_error_is_recorded(tiny_examples, tiny_corpus):
    failing = FakeRetriever(tiny_corpus, fail_on=RetrievalError("index server unreachable"))
    env = make_tiny(tiny_examples, tiny_corpus, retriever=failing)
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, info = env.step(Search("anything"))
    assert "unreachable" in info["retrieval_error"]
    assert obs["history"] == () and obs["steps_remaining"] == 9
    assert not terminated


def test_reset_options(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus)
    assert env.reset(options={"index": 2})[1]["example_id"] == "q3"
    extra = QAExample(id="new", question="Who directed Sinister?", answers=("Derrickson",))
    assert env.reset(options={"example": extra})[0]["question"] == "Who directed Sinister?"
    with pytest.raises(KeyError, match="no question with id"):
        env.reset(options={"example_id": "nope"})
    with pytest.raises(IndexError):
        env.reset(options={"index": 99})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"question": "x"})


def test_constructor_validation(tiny_examples, tiny_corpus):
    with pytest.raises(ValueError, match="k must be"):
        make_tiny(tiny_examples, tiny_corpus, k=0)
    with pytest.raises(ValueError, match="max_steps"):
        make_tiny(tiny_examples, tiny_corpus, max_steps=0)
    with pytest.raises(ValueError, match="unknown retriever"):
        make_tiny(tiny_examples, tiny_corpus, retriever="magic")
    with pytest.raises(TypeError, match="retriever must be"):
        make_tiny(tiny_examples, tiny_corpus, retriever=3)
    with pytest.raises(ValueError, match="needs corpus"):
        RAGEnv("custom", examples=tiny_examples)


def test_render_ansi(tiny_examples, tiny_corpus):
    env = make_tiny(tiny_examples, tiny_corpus, render_mode="ansi")
    env.reset(options={"example_id": "q2"})
    env.step(Search("Uranus"))
    env.step(Answer("Titan IIIE"))
    text = env.render()
    assert "search 1: 'Uranus' -> Uranus" in text and "answer: 'Titan IIIE'" in text


def test_bm25_env_finds_gold_evidence():
    env = gym.make("RAGGym/HotpotQA-v0", k=5)
    obs, info = env.reset(options={"index": 0})
    question = obs["question"]
    obs, _, _, _, info = env.step(Search(question))
    assert len(obs["history"][0]["documents"]) == 5
    assert info["evidence_recall"] > 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_envs(mode):
    kwargs = {"shared_memory": False} if mode == "async" else {}
    envs = gym.make_vec(
        "RAGGym/HotpotQA-v0", num_envs=2, vectorization_mode=mode, vector_kwargs=kwargs
    )
    try:
        obs, infos = envs.reset(seed=[1, 2])
        assert len(obs["question"]) == 2
        obs, rewards, terminated, truncated, infos = envs.step(
            ["Search: American director", Answer("yes")]
        )
        assert rewards.shape == (2,)
        assert list(terminated) == [False, True]
        assert len(obs["history"][0]) == 1
        assert infos["_metrics"][1] and not infos["_metrics"][0]
        assert np.isfinite(rewards).all()
    finally:
        envs.close()


def test_import_is_light():
    code = (
        "import sys, raggym_env; heavy = {'bm25s', 'torch', 'scipy', 'transformers', 'datasets'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_env_factory_shares_task_and_retriever_and_pickles_as_a_recipe():
    import pickle

    from raggym_env.env import EnvFactory

    factory = EnvFactory("hotpotqa", limit=5, k=3, max_steps=4)
    first, second = factory(), factory()
    assert first is not second
    assert second.task is first.task and second.retriever is first.retriever
    assert (second.k, second.max_steps) == (3, 4)
    obs1, _ = first.reset(options={"index": 2})
    obs2, _ = second.reset(options={"index": 2})
    assert obs1 == obs2
    second.step("Search: Scott Derrickson")
    assert first._history == []  # episode state is not shared
    clone = pickle.loads(pickle.dumps(factory))
    assert clone._template is None and clone().examples == first.examples
    assert "limit=5" in repr(factory)
