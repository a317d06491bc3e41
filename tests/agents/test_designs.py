"""The agent designs end to end on the bundled HotpotQA and MedQA samples with mock models."""

import re
from collections.abc import Callable, Sequence

import pytest

from raggym.agents.base import Memory
from raggym.agents.direct import CoTAgent, DirectAgent
from raggym.agents.llm.base import Completion, SamplingParams
from raggym.agents.prompting import load_prompt
from raggym.agents.rag import RAGAgent
from raggym.agents.re2search import Re2SearchAgent
from raggym.agents.react import ReActAgent
from raggym.agents.rollout import BatchedRunner, run_episode
from raggym.agents.search_o1 import SearchO1Agent
from raggym.testing.llms import MockLLM
from raggym_env import Answer, RAGEnv, Search

DESIGNS = {
    "direct": DirectAgent,
    "cot": CoTAgent,
    "rag": RAGAgent,
    "react": ReActAgent,
    "search_o1": SearchO1Agent,
    "re2search": Re2SearchAgent,
}
CONDENSE_SYSTEM = load_prompt("search_o1_condense").system
GARBAGE = "I refuse to follow the format."


# ----------------------------------------------------------------------------- helpers
def is_condense(conversation) -> bool:
    return conversation[0]["content"] == CONDENSE_SYSTEM


def user(conversation) -> str:
    return conversation[-1]["content"]


def question_of(text: str) -> str:
    return re.search(r"^Question: (.*)$", text, re.MULTILINE).group(1)


def titles(text: str) -> list[str]:
    return re.findall(r"^\[\d+\] Title: (.*)$", text, re.MULTILINE)


def knowledge(text: str) -> list[str]:
    """What the condensed query/answer pairs in a prompt say, reduced to the entity."""
    out = []
    for line in re.findall(r"^Answer \(from documents\): (.*)$", text, re.MULTILINE):
        said = re.fullmatch(r"The documents say (.*) is relevant\.", line)
        out.append(said.group(1) if said else line.split(":")[0])  # fallback: "Title: text"
    return out


def words(conversation) -> int:
    return sum(len(m["content"].split()) for m in conversation)


def plausible(design: str) -> Callable[[Sequence[dict]], str]:
    """A mock model that reads its prompt and replies in the design's format."""

    def respond(conversation):
        text = user(conversation)
        mc = "\nOptions:\n" in text
        if is_condense(conversation):
            return f"Answer: The documents say {titles(text)[0]} is relevant."
        if design in ("direct", "cot"):
            return "I recall this.\nAnswer: " + ("B" if mc else "yes")
        if design == "rag":
            return f"The documents mention {titles(text)[0]}.\nAnswer: " + (
                "(B)" if mc else titles(text)[0]
            )
        if design == "react":
            if "[1] Title:" not in text:
                return f"Thought: I should look this up.\nAction: Search[{question_of(text)}]"
            last = text.rsplit("Observation", 1)[1]
            return "Thought: found it.\nAction: Finish[" + ("B" if mc else titles(last)[0]) + "]"
        known = knowledge(text)
        if design == "search_o1":
            if not known:
                return f"Reasoning: I need facts.\nSearch: {question_of(text)}"
            return "Reasoning: The search answered it.\nAnswer: " + ("B" if mc else known[-1])
        if not known:
            return (
                "Reasoning: A guess.\nPredicted answer: " + ("A" if mc else "guess") + "\n"
                f"Unverified claim: the guess holds\nQuery: {question_of(text)}"
            )
        return (
            "Reasoning: Verified.\nPredicted answer: " + ("B" if mc else known[-1]) + "\n"
            "Unverified claim: none\nQuery: none"
        )

    return respond


def flaky(respond, bad_main_calls: int = 1):
    """The first ``bad_main_calls`` main (non-condensation) replies are garbage."""
    count = {"main": 0}

    def wrapped(conversation):
        if is_condense(conversation):
            return respond(conversation)
        count["main"] += 1
        return GARBAGE if count["main"] <= bad_main_calls else respond(conversation)

    return wrapped


class FailingLLM:
    """Every request fails (or only condensation requests, with ``condense_only``)."""

    name = "failing"

    def __init__(self, respond=None, *, condense_only: bool = False, error="LLMError: boom"):
        self.inner = MockLLM(respond or (lambda c: ""))
        self.condense_only = condense_only
        self.error = error
        self.calls = 0

    def generate(self, conversations, params: SamplingParams) -> list[Completion]:
        self.calls += 1
        if self.condense_only and not all(is_condense(c) for c in conversations):
            return self.inner.generate(conversations, params)
        return [Completion(error=self.error, latency_s=0.01) for _ in conversations]


def hotpot(**kwargs) -> RAGEnv:
    return RAGEnv("hotpotqa", limit=6, **kwargs)


def medqa(**kwargs) -> RAGEnv:
    return RAGEnv("medqa", limit=3, **kwargs)


def main_prompts(llm: MockLLM) -> list[list[dict]]:
    return [c for convs, _ in llm.calls for c in convs if not is_condense(c)]


def condense_prompts(llm: MockLLM) -> list[list[dict]]:
    return [c for convs, _ in llm.calls for c in convs if is_condense(c)]


# ----------------------------------------------------------------------------- end to end
EXPECTED_ACTIONS = {
    "direct": ["answer"],
    "cot": ["answer"],
    "rag": ["search", "answer"],
    "react": ["search", "answer"],
    "search_o1": ["search", "answer"],
    "re2search": ["search", "answer"],
}


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_each_design_end_to_end_on_hotpotqa(design):
    llm = MockLLM(plausible(design))
    agent = DESIGNS[design](llm)
    record = run_episode(hotpot(), agent, options={"index": 0})
    assert record.error is None and record.terminated
    assert [s.action_type for s in record.steps] == EXPECTED_ACTIONS[design]
    assert record.extra["agent"] == design
    question = "Were Scott Derrickson and Ed Wood of the same nationality?"
    mains = main_prompts(llm)
    for step in record.steps:
        if step.raw_text is None:  # RAG's scripted search: no model call
            assert design == "rag" and step.index == 0
            assert step.action == {"type": "search", "text": question}
            assert "prompt" not in step.extra and step.tokens == {}
            continue
        prompt = step.extra["prompt"]
        assert prompt in mains  # the exact messages the model received
        assert step.raw_text == plausible(design)(prompt)
        condensing = design in ("search_o1", "re2search") and step.index == 1
        if not condensing:  # (a condensing step is checked below)
            assert step.tokens["completion"] == len(step.raw_text.split())
        assert f"Question: {question}" in user(prompt)
    assert len(mains) == sum(s.raw_text is not None for s in record.steps)
    if len(record.steps) == 1:
        assert record.final_answer == "yes" and record.metrics["em"] == 1.0
        return
    first_titles = [doc.title for doc in record.steps[0].retrieved]
    second = user(record.steps[1].extra["prompt"])
    assert record.final_answer == first_titles[0]
    if design in ("rag", "react"):
        assert all(f"Title: {title}" in second for title in first_titles)
        assert record.steps[1].tokens["prompt"] == words(record.steps[1].extra["prompt"])
    else:  # condensed query/answer pairs instead of documents
        (condensed,) = condense_prompts(llm)
        assert f"Search query: {record.steps[0].action['text']}" in user(condensed)
        assert (
            f"Answer (from documents): The documents say {first_titles[0]} is relevant." in second
        )
        assert "[1] Title:" not in second
        assert record.steps[1].extra["fields"]["condense_source"] == "model"
        # the step is charged with its condensation call as well as its main call
        expected = words(record.steps[1].extra["prompt"]) + words(condensed)
        assert record.steps[1].tokens["prompt"] == expected
        condensed_reply = plausible(design)(condensed)
        expected = len(record.steps[1].raw_text.split()) + len(condensed_reply.split())
        assert record.steps[1].tokens["completion"] == expected
        assert "prepare_latency_s" in record.steps[1].extra


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_each_design_answers_multiple_choice_with_a_letter(design):
    llm = MockLLM(plausible(design))
    env = medqa()
    for index in range(3):
        record = run_episode(env, DESIGNS[design](llm), options={"index": index})
        assert record.error is None and record.terminated
        assert record.final_answer == "B"
        assert [s.action_type for s in record.steps] == EXPECTED_ACTIONS[design]
        prompt = user(record.steps[-1].extra["prompt"])
        assert "\nOptions:\nA. " in prompt and "\nD. " in prompt
        assert "letter of the correct option (A, B, C or D)" in (
            record.steps[-1].extra["prompt"][0]["content"] + prompt
        )
        assert record.metrics["accuracy"] == (1.0 if index != 1 else 0.0)  # gold: B, D, B


def test_re2search_records_its_prediction_claim_and_query():
    llm = MockLLM(plausible("re2search"))
    record = run_episode(hotpot(), Re2SearchAgent(llm), options={"index": 1})
    first, second = (s.extra["fields"] for s in record.steps)
    assert first["predicted_answer"] == "guess"
    assert first["claim"] == "the guess holds"
    assert first["action"] == "search"
    assert second["claim"] == "none" and second["action"] == "answer"
    assert second["predicted_answer"] == record.final_answer


# ----------------------------------------------------------------------------- unreadable output
EXPECTED_AFTER_GARBAGE = {
    "direct": ["invalid", "answer"],
    "cot": ["invalid", "answer"],
    "rag": ["search", "invalid", "answer"],
    "react": ["invalid", "search", "answer"],
    "search_o1": ["invalid", "search", "answer"],
    "re2search": ["invalid", "search", "answer"],
}


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_garbage_becomes_an_invalid_step_and_the_episode_continues(design):
    llm = MockLLM(flaky(plausible(design)))
    record = run_episode(hotpot(), DESIGNS[design](llm), options={"index": 0})
    assert [s.action_type for s in record.steps] == EXPECTED_AFTER_GARBAGE[design]
    bad_index = EXPECTED_AFTER_GARBAGE[design].index("invalid")
    bad, following = record.steps[bad_index], record.steps[bad_index + 1]
    assert bad.raw_text == GARBAGE
    assert "expected" in bad.action_error and GARBAGE[:20] in bad.action_error
    assert bad.retrieved == [] and bad.tokens["completion"] == len(GARBAGE.split())
    assert "Your previous reply could not be read" in user(following.extra["prompt"])
    if design == "react":
        assert "Action 1: (unreadable)" in user(following.extra["prompt"])
    assert record.terminated and record.error is None


# ----------------------------------------------------------------------------- budget end
SEARCH_ONLY = {
    "react": ("Thought: Probably Paris, but let me check.\nAction: Search[capital of France]",
              "Probably Paris, but let me check."),
    "search_o1": ("Reasoning: Probably Paris.\nSearch: capital of France", "Probably Paris."),
    "re2search": (
        "Reasoning: r\nPredicted answer: Paris\nUnverified claim: c\nQuery: capital of France",
        "Paris",
    ),
}  # fmt: skip


@pytest.mark.parametrize("design", sorted(SEARCH_ONLY))
def test_the_last_step_forces_an_answer(design):
    reply, expected = SEARCH_ONLY[design]
    llm = MockLLM(lambda c: "Answer: France's capital." if is_condense(c) else reply)
    record = run_episode(hotpot(max_steps=2), DESIGNS[design](llm), options={"index": 0})
    assert [s.action_type for s in record.steps] == ["search", "answer"]
    assert record.terminated and not record.truncated
    last = record.steps[-1]
    assert last.extra["fields"]["forced_answer"] == "true"
    assert last.raw_text == reply
    assert record.final_answer == expected
    assert "This is your last step" in user(last.extra["prompt"])


def test_forced_answers_stay_letters_on_multiple_choice():
    reply = "Reasoning: r\nPredicted answer: (C) Report\nUnverified claim: c\nQuery: ethics"
    llm = MockLLM(lambda c: "Answer: ethics." if is_condense(c) else reply)
    record = run_episode(medqa(max_steps=2), Re2SearchAgent(llm), options={"index": 0})
    assert record.final_answer == "C"
    react = MockLLM(lambda c: "Thought: The answer is D, I think.\nAction: Search[report]")
    record = run_episode(medqa(max_steps=2), ReActAgent(react), options={"index": 0})
    assert record.final_answer == "D"


def test_unreadable_output_on_the_last_step_is_still_answered():
    record = run_episode(
        hotpot(max_steps=1), DirectAgent(MockLLM(lambda c: "I cannot say")), options={"index": 0}
    )
    (step,) = record.steps
    assert step.action == {"type": "answer", "text": "I cannot say"}
    assert "expected" in step.action_error
    assert step.extra["fields"]["forced_answer"] == "true"


def test_rag_answers_without_searching_when_one_step_is_left():
    llm = MockLLM(lambda c: "No documents.\nAnswer: yes")
    record = run_episode(hotpot(max_steps=1), RAGAgent(llm), options={"index": 0})
    assert [s.action_type for s in record.steps] == ["answer"]
    assert "(no documents were found)" in user(record.steps[0].extra["prompt"])


# ----------------------------------------------------------------------------- failed requests
@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_a_failed_request_ends_the_episode_with_its_error(design):
    llm = FailingLLM()
    record = run_episode(hotpot(), DESIGNS[design](llm), options={"index": 0})
    assert record.error == "LLMError: boom"
    assert [s.action_type for s in record.steps] == (["search"] if design == "rag" else [])
    assert record.final_answer is None
    assert llm.calls == 1


# ----------------------------------------------------------------------------- condensation
@pytest.mark.parametrize("design", ["search_o1", "re2search"])
def test_one_condensation_call_per_step_for_a_batch(design):
    base = hotpot()
    llm = MockLLM(plausible(design))
    agent = DESIGNS[design](llm)
    runner = BatchedRunner(lambda: hotpot(retriever=base.retriever), agent, batch_size=4)
    records = runner.run(base.examples)
    assert len(records) == 6
    assert all(r.error is None and r.terminated for r in records)
    assert all(r.final_answer == r.steps[0].retrieved[0].title for r in records)
    kinds = []
    for conversations, params in llm.calls:
        flags = {is_condense(c) for c in conversations}
        assert len(flags) == 1, "condensation and main requests were mixed in one call"
        kinds.append(("condense" if flags == {True} else "main", len(conversations)))
        if flags == {True}:
            assert params.max_tokens == agent.condense_params.max_tokens and params.stop == ()
    # 4 episodes search, their 4 searches are condensed in one call, they answer; then the
    # last 2 episodes do the same
    assert kinds == [
        ("main", 4), ("condense", 4), ("main", 4), ("main", 2), ("condense", 2), ("main", 2),
    ]  # fmt: skip
    assert runner.stats["agent_calls"] == 4
    assert len(condense_prompts(llm)) == sum(r.num_searches for r in records)


@pytest.mark.parametrize("design", ["search_o1", "re2search"])
@pytest.mark.parametrize("failure", ["error", "empty"])
def test_condensation_failure_falls_back_to_the_documents(design, failure):
    if failure == "error":
        llm = FailingLLM(plausible(design), condense_only=True, error="LLMError: condense down")
        reason = "condense down"
    else:
        inner = plausible(design)
        llm = MockLLM(lambda c: "  \n" if is_condense(c) else inner(c))
        reason = "empty"
    agent = DESIGNS[design](llm, fallback_chars=120)
    env = hotpot()
    observation, _ = env.reset(options={"index": 0})
    memory = agent.start(env.current_example)
    first = agent.act(observation, memory)
    assert isinstance(first.action, Search)
    observation, *_ = env.step(first.env_action())
    second = agent.act(observation, memory)
    assert isinstance(second.action, Answer)
    top = observation["history"][0]["documents"][0]
    (entry,) = memory.data["condensed"]
    assert entry["source"] == "fallback" and reason in entry["error"]
    assert entry["answer"].startswith(f"{top['title']}: ") and len(entry["answer"]) <= 124
    assert memory.notes[-1]["condense_source"] == "fallback"
    assert reason in memory.notes[-1]["condense_error"]
    assert second.extra["fields"]["condense_error"] == memory.notes[-1]["condense_error"]
    shown = user(second.prompt)
    assert f"Answer (from documents): {entry['answer']}" in shown
    assert second.action == Answer(top["title"])


def test_a_search_without_documents_needs_no_condensation():
    llm = MockLLM(plausible("search_o1"))
    agent = SearchO1Agent(llm)
    observation = {
        "question": "Who?",
        "options": (),
        "history": ({"query": "zzz", "documents": ()},),
        "steps_remaining": 5,
    }
    memory = Memory(example=hotpot().examples[0])
    agent.prepare([observation], [memory])
    assert llm.calls == []
    assert memory.data["condensed"] == [
        {"query": "zzz", "answer": "The search returned no documents.", "source": "empty"}
    ]
    assert "Answer (from documents): The search returned no documents." in user(
        agent.messages(observation, memory)
    )


# ----------------------------------------------------------------------------- details
def test_react_stops_before_an_invented_observation():
    reply = "Thought: t\nAction: Search[Ed Wood]\nObservation 1: Ed Wood was Martian."
    llm = MockLLM(lambda c: reply)
    agent = ReActAgent(llm)
    record = run_episode(hotpot(max_steps=2), agent, options={"index": 0})
    assert record.steps[0].raw_text == "Thought: t\nAction: Search[Ed Wood]"
    assert llm.calls[0][1].stop == ("\nObservation",)
    second = user(record.steps[1].extra["prompt"])
    assert "Thought 1: t\nAction 1: Search[Ed Wood]\nObservation 1:\n[1] Title: " in second
    assert "Martian" not in second


def test_doc_words_caps_each_document_in_the_prompt():
    llm = MockLLM(plausible("rag"))
    record = run_episode(hotpot(), RAGAgent(llm, doc_words=5), options={"index": 0})
    prompt = user(record.steps[1].extra["prompt"])
    bodies = re.findall(r"^\[\d+\] Title: .*\n(.*)$", prompt, re.MULTILINE)
    assert len(bodies) == 5
    assert all(len(body.split()) <= 6 for body in bodies)
    assert any(body.endswith(" ...") for body in bodies)
    with pytest.raises(ValueError, match="doc_words"):
        ReActAgent(llm, doc_words=0)
    with pytest.raises(ValueError, match="fallback_chars"):
        SearchO1Agent(llm, fallback_chars=0)


def test_describe_reports_the_configuration():
    llm = MockLLM(lambda c: "")
    card = Re2SearchAgent(llm, doc_words=40, temperature=0.7, seed=3).describe()
    assert card["agent"] == "re2search" and card["class"] == "Re2SearchAgent"
    assert card["doc_words"] == 40 and card["temperature"] == 0.7
    assert card["condense_prompt"] == "search_o1_condense"
    assert len(card["condense_prompt_sha256"]) == 64
    assert DirectAgent(llm).describe()["prompt"] == "direct"
    names = {cls(llm).name for cls in DESIGNS.values()}
    assert names == set(DESIGNS)


BIG = 20_000_000  # a runaway reply: 20 MB


@pytest.mark.parametrize("design", ["react", "search_o1", "re2search", "cot"])
def test_a_20_mb_reply_yields_a_bounded_episode_line_and_next_prompt(design, tmp_path):
    from raggym_env.store import EpisodeStore

    finish = (
        "Thought: done\nAction: Finish[yes]\nAnswer: yes\n"
        "Predicted answer: yes\nUnverified claim: none\nQuery: none"
    )
    runaway = "Thought: " + "x " * (BIG // 2) + "\ud800\nAction: Search[Paris]"
    calls = []

    def respond(conversation):
        calls.append(conversation)
        return runaway if len(calls) <= 3 else finish  # condensation calls run away too

    llm = MockLLM(respond)
    record = run_episode(hotpot(max_steps=4), DESIGNS[design](llm), options={"index": 0})
    first = record.steps[0].raw_text
    assert first.endswith(f"…[truncated {len(runaway) - 32_000:,} chars]")
    assert "\ud800" not in first
    path = tmp_path / "episodes.jsonl"
    with EpisodeStore(path, fsync=False) as store:
        store.append(record)
    line_bytes = path.stat().st_size
    prompt_chars = max(sum(len(m["content"]) for m in c) for c in calls[1:])
    print(f"\n{design}: episode line {line_bytes:,} bytes, longest later prompt {prompt_chars:,}")
    assert line_bytes < 600_000  # 3 x 20 MB unbounded
    assert prompt_chars < 120_000


def test_max_reply_chars_is_configurable_and_checked():
    llm = MockLLM(lambda conversation: "Answer: " + "y" * 500)
    record = run_episode(hotpot(), DirectAgent(llm, max_reply_chars=100), options={"index": 0})
    assert record.steps[0].raw_text == "Answer: " + "y" * 92 + "…[truncated 408 chars]"
    assert DirectAgent(llm, max_reply_chars=100).describe()["max_reply_chars"] == 100
    with pytest.raises(ValueError, match="max_reply_chars must be a positive int"):
        DirectAgent(llm, max_reply_chars=0)
