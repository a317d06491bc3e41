"""The RAG-Gym protocol's designs: golden prompts, official-format replies, fallbacks."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from raggym.agents.base import Memory
from raggym.agents.critics.base import CriticItem
from raggym.agents.critics.rag_gym_judge import RagGymJudgeCritic, parse_ranked_indices
from raggym.agents.prompting import PromptError
from raggym.agents.rag_gym import (
    RagGymRe2SearchAgent,
    RagGymReActAgent,
    RagGymSearchO1Agent,
    load_official_prompts,
    parse_predicted_answer,
    parse_search_or_finish,
    protocol_question,
    read_structured_output,
)
from raggym.agents.registry import make_agent, make_critic
from raggym.agents.rollout import run_episode
from raggym.testing import ScriptedLLM, make_tiny_env
from raggym_env import Answer, QAExample, Search
from raggym_env.observation import build_observation
from raggym_env.types import Document

DOCS = [
    Document("d1", "Voyager 2", "Voyager 2 flew past Uranus in 1986."),
    Document("d2", "Titan IIIE", "The Titan IIIE was built by Martin Marietta."),
]


def _observation(steps_remaining: int = 5, options: dict[str, str] | None = None) -> Any:
    return build_observation(
        "Who built the rocket?", options, [("Voyager 2 launch", DOCS)], steps_remaining
    )


def _memory() -> Memory:
    return Memory(example=QAExample(id="q", question="Who built the rocket?", answers=["x"]))


def _reply(obj: str, heading: bool = True) -> str:
    head = "### Step-by-step Reasoning\nThinking.\n\n### Structured Output\n" if heading else ""
    return f"{head}```json\n{obj}\n```"


# --------------------------------------------------------------------------- golden prompts
REACT_USER = """### Information-seeking History
Query: Voyager 2 launch
Document [0] (Title: Voyager 2) Voyager 2 flew past Uranus in 1986.
Document [1] (Title: Titan IIIE) The Titan IIIE was built by Martin Marietta.

### Original Question
Who built the rocket?

Write your reply in two sections:"""


def test_react_prompt_shows_full_documents_and_no_budget_or_thoughts() -> None:
    agent = RagGymReActAgent(ScriptedLLM(["x"]))
    memory = _memory()
    memory.notes.append({"reasoning": "SECRET THOUGHT"})
    system, user = agent.messages(_observation(), memory)
    assert system["role"] == "system" and "one step at a time" in system["content"]
    assert user["content"].startswith(REACT_USER)
    text = user["content"]
    assert "SECRET THOUGHT" not in text and "steps left" not in text
    for key in ("### Step-by-step Reasoning", "### Structured Output", "Search[query]"):
        assert key in text
    assert '"generated_query":' in text and '"predicted_answer":' in text


def test_react_last_step_offers_only_finish() -> None:
    agent = RagGymReActAgent(ScriptedLLM(["x"]))
    text = agent.messages(_observation(steps_remaining=1), _memory())[1]["content"]
    assert "Finish[answer]" in text and "Search[query]" not in text
    assert '"generated_query"' not in text and '"predicted_answer"' in text


def test_multiple_choice_question_is_the_text_then_the_options_dict() -> None:
    options = {"A": "Boeing", "B": "Martin Marietta's plant"}
    observation = _observation(options=options)
    assert protocol_question(observation) == (
        "Who built the rocket? {'A': 'Boeing', 'B': \"Martin Marietta's plant\"}"
    )


def test_summarising_designs_show_query_answer_pairs_from_a_separate_backend() -> None:
    actor = ScriptedLLM([_reply('{"predicted_answer": "Martin Marietta"}')], name="actor")
    summariser = ScriptedLLM(["Martin Marietta built it."], name="summariser")
    for cls in (RagGymSearchO1Agent, RagGymRe2SearchAgent):
        agent = cls(actor, condense_llm=summariser)
        memory = agent.start(_memory().example)
        decision = agent.act(_observation(), memory)
        user = decision.prompt[1]["content"] if decision.prompt else ""
        assert user.startswith(
            "### Information-seeking History\nQuery: Voyager 2 launch\n"
            "Answer: Martin Marietta built it.\n\n### Original Question\nWho built the rocket?"
        )
        assert decision.action == Answer("Martin Marietta")
        assert agent.describe()["condense_llm"] == "summariser"
        assert agent.condense_params.temperature == 0.0
    # the summariser saw the titled documents and the original question as context
    assert summariser.replies == ["Martin Marietta built it."]


def test_summariser_prompt_layout() -> None:
    agent = RagGymSearchO1Agent(ScriptedLLM(["x"]))
    entry = _observation()["history"][0]
    user = agent.condense_messages(_observation(), entry)[1]["content"]
    assert user.startswith(
        "### Relevant Documents\n(Title: Voyager 2) Voyager 2 flew past Uranus in 1986.\n"
        "(Title: Titan IIIE) The Titan IIIE was built by Martin Marietta.\n\n### Context\n"
        "Original question:\nWho built the rocket?\n\n### Follow-up Query\nVoyager 2 launch\n\n"
    )


def test_re2search_prompt_has_the_three_sections() -> None:
    agent = RagGymRe2SearchAgent(ScriptedLLM(["x"]))
    text = agent.messages(_observation(steps_remaining=1), _memory())[1]["content"]
    sections = re.findall(r"\*\*(### [^*]+)\*\*", text)
    assert sections == [
        "### Step-by-step Reasoning",
        "### Unverified Claim Identification",
        "### Structured Output",
    ]
    assert '"predicted_answer":' in text and '"generated_query":' in text


# --------------------------------------------------------------------------- reading replies
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_reply('{\n    "generated_query": "Titan IIIE maker",\n}'), Search("Titan IIIE maker")),
        (_reply('{"predicted_answer": "Martin Marietta"}'), Answer("Martin Marietta")),
        (_reply("{'generated_query': 'single quotes'}"), Search("single quotes")),
        (_reply('{"generated_queries": ["first", "second"]}'), Search("first")),
        (_reply('{"query": "q wins", "generated_query": "not this"}'), Search("q wins")),
        (_reply('{"generated_query": null, "predicted_answer": "1986"}'), Answer("1986")),
        (_reply('{"generated_query": "x", // a comment\n "predicted_answer": "y"}'), Search("x")),
        (_reply("{}"), Answer("None")),
        ('### Structured Output\n{"predicted_answer": "bare"}', Answer("bare")),
        (
            _reply('{"generated_query": "early"}') + "\n" + _reply('{"predicted_answer": "late"}'),
            Answer("late"),
        ),
    ],
)
def test_official_format_replies(text: str, expected: object) -> None:
    assert parse_search_or_finish(text).action == expected


def test_unreadable_reply_is_searched_as_raw_text() -> None:
    parsed = parse_search_or_finish("Reasoning...\n### Structured Output\nlook up Titan IIIE")
    assert parsed.action == Search("look up Titan IIIE")
    assert parsed.fields["fallback"] == "raw text searched"
    parsed = parse_search_or_finish(_reply("{'generated_query': __import__('os')}"))
    assert isinstance(parsed.action, Search)  # never executed: searched as text
    assert "__import__" in parsed.action.query


def test_blank_reply_is_an_invalid_step() -> None:
    parsed = parse_search_or_finish("### Structured Output\n   ")
    assert parsed.action is None and parsed.error


def test_re2search_none_query_answers_and_keeps_the_prediction() -> None:
    text = _reply('{"predicted_answer": "Martin Marietta", "generated_query": "None"}')
    assert parse_search_or_finish(text, keep_answer=True).action == Answer("Martin Marietta")
    text = _reply('{"predicted_answer": "Boeing", "generated_query": "who built Titan IIIE"}')
    parsed = parse_search_or_finish(text, keep_answer=True)
    assert parsed.action == Search("who built Titan IIIE")
    assert parsed.fields["predicted_answer"] == "Boeing"


def test_direct_reply_falls_back_to_the_text_after_predicted_answer() -> None:
    assert parse_predicted_answer('{"predicted_answer": "B"}').action == Answer("B")
    parsed = parse_predicted_answer('predicted_answer: "B" (garbled', sections=False)
    assert parsed.action == Answer(': "B" (garbled')


def test_reading_is_linear_on_adversarial_text() -> None:
    for text in ("```json {" * 40_000, "{" * 200_000, "```json\n{" + "a" * 200_000):
        tick = time.perf_counter()
        read_structured_output(text)
        assert time.perf_counter() - tick < 1.0


def test_last_step_non_answer_becomes_the_remembered_prediction() -> None:
    env = make_tiny_env(max_steps=2)
    replies = [
        _reply('{"predicted_answer": "Boeing", "generated_query": "Titan IIIE"}'),
        _reply('{"predicted_answer": "None", "generated_query": "still searching"}'),
    ]
    record = run_episode(env, make_agent("re2search", ScriptedLLM(replies), protocol="rag-gym"))
    assert record.steps[-1].action == {"type": "answer", "text": "Boeing"}
    replies = [_reply('{"generated_query": "Titan IIIE"}')]
    record = run_episode(env, make_agent("react", ScriptedLLM(replies), protocol="rag-gym"))
    assert record.steps[-1].action == {"type": "answer", "text": "None"}


def test_registry_builds_protocol_designs_under_the_same_names() -> None:
    llm = ScriptedLLM(["x"])
    for name in ("direct", "cot", "rag", "react", "search_o1", "re2search"):
        agent = make_agent(name, llm, protocol="rag-gym")
        assert agent.name == name and agent.describe()["protocol"] == "rag-gym"
        assert "protocol" not in make_agent(name, llm).describe()
    with pytest.raises(ValueError, match="unknown protocol"):
        make_agent("react", llm, protocol="nope")


# --------------------------------------------------------------------------- the annotator
def _items(actions: list[Any]) -> list[CriticItem]:
    return [CriticItem(_observation(), str(a), a) for a in actions]


def test_judge_prompt_and_reciprocal_rank_rewards() -> None:
    llm = ScriptedLLM(['Ranking:\n```json\n{"ranked_indices": [2, 0, 1]}\n```'])
    judge = make_critic("judge", llm=llm, protocol="rag-gym")
    assert isinstance(judge, RagGymJudgeCritic)
    items = _items([Search("Titan IIIE"), Answer("Boeing"), Search("Titan IIIE")])
    user = judge.messages(items)[1]["content"]
    assert user.startswith("## Original Question:\nWho built the rocket?\n\n")
    assert '"content": "Voyager 2 flew past Uranus in 1986."' in user
    assert "[0] Query: Titan IIIE\n[1] Answer: Boeing\n[2] Query: Titan IIIE" in user
    for criterion in ("Sufficiency Check", "Utility Check", "Redundancy Check"):
        assert criterion in user
    scores = judge.score([items])[0]
    assert [s.score for s in scores] == [0.5, pytest.approx(1 / 3), 1.0]


def test_judge_sees_summaries_when_the_actor_reads_them() -> None:
    judge = RagGymJudgeCritic(ScriptedLLM(["x"]))
    item = CriticItem(
        _observation(), "q", Search("q"), summaries=(("Voyager 2 launch", "On a Titan IIIE."),)
    )
    user = judge.messages([item])[1]["content"]
    assert '"answer": "On a Titan IIIE."' in user and '"documents"' not in user


@pytest.mark.parametrize(
    "reply",
    ["no json here", '```json\n{"ranked_indices": [0]}\n```', '```json\n{"ranked": [0, 1]}\n```'],
)
def test_judge_failures_are_recorded_never_zero(reply: str) -> None:
    judge = RagGymJudgeCritic(ScriptedLLM([reply]))
    scores = judge.score([_items([Search("a"), Search("b")])])[0]
    assert all(s.score is None and s.error for s in scores)


def test_ranked_indices_reader() -> None:
    assert parse_ranked_indices('```json{"ranked_indices": [1, 0]}```') == [1, 0]
    assert parse_ranked_indices('```json x\n```json {"ranked_indices": [0]}') == [0]
    with pytest.raises(ValueError):
        parse_ranked_indices('```json {"ranked_indices": [0, "1"]}```')


# --------------------------------------------------------------------------- official templates
OFFICIAL_REACT = """
from liquid import Template
react_system_prompt = '''System words.'''
react_user_template = Template('''History:
{{history}}
Question: {{ question }}
```json
{"generated_query": "..."}
```''')
react_truncated_user_template = Template('''Final: {{history}} {{question}}''')
"""


def _checkout(root: Path) -> Path:
    agents = root / "rag_gym" / "agents"
    agents.mkdir(parents=True)
    (agents / "react.py").write_text(OFFICIAL_REACT, encoding="utf-8")
    common = "{0}_system_prompt = 'S {0}'\n{0}_user_template = Template('''U {{{{question}}}}''')\n"
    (agents / "search_o1.py").write_text(
        "search_o1_system_prompt = 'S'\n"
        "search_o1_user_template = Template('''{{history}} {{question}}''')\n"
        "search_o1_truncated_user_template = Template('''F {{history}} {{question}}''')\n",
        encoding="utf-8",
    )
    (agents / "research.py").write_text(
        "research_system_prompt = 'S'\n"
        "research_user_template = Template('''R {{history}} {{question}}''')\n"
        "rag_system_prompt = 'summarise'\n"
        "rag_user_template = Template('''{{documents}}|{{context}}|{{query}}''')\n",
        encoding="utf-8",
    )
    for name in ("direct", "cot"):
        (agents / f"{name}.py").write_text(common.format(name), encoding="utf-8")
    (agents / "rag.py").write_text(
        "rag_system_prompt = 'S'\nrag_user_template = Template('''{{documents}} {{question}}''')\n",
        encoding="utf-8",
    )
    return root


def test_official_templates_are_read_from_a_checkout_without_running_it(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "RAG-Gym")
    templates = load_official_prompts(root)
    react = templates["react"]
    assert react.placeholders == ("history", "question")
    rendered = react.render(history="H", question="Q")
    assert rendered[0]["content"] == "System words."
    assert (
        rendered[1]["content"]
        == 'History:\nH\nQuestion: Q\n```json\n{"generated_query": "..."}\n```'
    )
    agent = RagGymReActAgent(ScriptedLLM(["x"]), official_prompts=root)
    final = agent.messages(_observation(steps_remaining=1), _memory())[1]["content"]
    assert final.startswith("Final: Query: Voyager 2 launch")
    summarising = RagGymSearchO1Agent(ScriptedLLM(["x"]), official_prompts=root)
    assert summarising.condense_template.name == "official:summarize"
    assert summarising.describe()["prompt"] == "official:search_o1"


def test_official_templates_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="not a checkout"):
        load_official_prompts(tmp_path)
    root = _checkout(tmp_path / "RAG-Gym")
    (root / "rag_gym" / "agents" / "cot.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(PromptError, match="cot_system_prompt"):
        load_official_prompts(root)


def test_critics_see_the_actors_prompt_and_summaries() -> None:
    from raggym.agents.critics.base import CallableCritic

    seen: list[CriticItem] = []

    def record(item: CriticItem) -> float:
        seen.append(item)
        return 1.0 if isinstance(item.action, Answer) else 0.0

    actor = ScriptedLLM(
        [
            _reply('{"predicted_answer": "Martin Marietta", "generated_query": "None"}'),
            _reply('{"predicted_answer": "Boeing", "generated_query": "Titan IIIE"}'),
        ]
    )
    summariser = ScriptedLLM(["On a Titan IIIE."], name="summariser")
    agent = make_agent(
        "re2search++", actor, critic=CallableCritic(record), n=2, protocol="rag-gym",
        summarizer=summariser,
    )  # fmt: skip
    memory = agent.start(_memory().example)
    decision = agent.act(_observation(), memory)
    assert decision.action == Answer("Martin Marietta")
    assert len(seen) == 2
    for item in seen:
        assert item.prompt == decision.prompt
        assert item.summaries == (("Voyager 2 launch", "On a Titan IIIE."),)


def test_react_and_search_o1_do_not_execute_a_search_on_the_step_before_last() -> None:
    env = make_tiny_env(max_steps=3)
    replies = [_reply('{"generated_query": "Voyager 2"}')] * 2 + [
        _reply('{"predicted_answer": "Martin Marietta"}')
    ]
    for name in ("react", "search_o1"):
        summariser = ScriptedLLM(["A summary."])
        agent = make_agent(name, ScriptedLLM(replies), protocol="rag-gym", summarizer=summariser)
        record = run_episode(env, agent)
        kinds = [s.action["type"] for s in record.steps]
        assert kinds == ["search", "invalid", "answer"]
        assert "second-to-last" in (record.steps[1].action_error or "")
    agent = make_agent(
        "re2search", ScriptedLLM(replies), protocol="rag-gym", summarizer=ScriptedLLM(["A."])
    )
    record = run_episode(env, agent)
    assert [s.action["type"] for s in record.steps] == ["search", "search", "answer"]


OFFICIAL_RERANKER = '''
class LMReranker:
    def __call__(self, state, actions):
        messages = [
            {"role": "system", "content": "Rank {them}."},
            {
                "role": "user",
                "content": (
                    f"Q: {question}\\n"
                    f"H: {curr_history}\\n"
                    f"A: {actions_text}\\n"
                    """Reply ```json{"ranked_indices": [...]}```."""
                ),
            },
        ]
'''


def test_official_annotator_prompt_is_read_from_the_reranker(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "RAG-Gym")
    rewards = root / "rag_gym" / "rewards"
    rewards.mkdir()
    (rewards / "lm_rerank.py").write_text(OFFICIAL_RERANKER, encoding="utf-8")
    judge = RagGymJudgeCritic(ScriptedLLM(["x"]), official_prompts=root)
    assert judge.template.name == "official:judge"
    system, user = judge.messages(_items([Search("a"), Answer("b")]))
    assert system["content"] == "Rank {them}."
    assert user["content"].startswith("Q: Who built the rocket?\nH: [\n")
    assert user["content"].endswith(
        'A: [0] Query: a\n[1] Answer: b\nReply ```json{"ranked_indices": [...]}```.'
    )
    (rewards / "lm_rerank.py").write_text("x = f'{os.system}'\n", encoding="utf-8")
    with pytest.raises(PromptError, match="annotator"):
        RagGymJudgeCritic(ScriptedLLM(["x"]), official_prompts=root)


def test_rollout_cli_takes_the_protocol_and_official_prompts(tmp_path: Path, capsys: Any) -> None:
    from raggym_env.cli import main

    root = _checkout(tmp_path / "RAG-Gym")
    with_official = [
        "rollout", "--task", "hotpotqa", "--agent", "react", "--limit", "1",
        "--llm", "openai:http://127.0.0.1:9/v1:m", "--out", str(tmp_path / "x.jsonl"),
        "--official-prompts", str(root),
    ]  # fmt: skip
    assert main(with_official) == 2  # raggym's protocol has no official prompts
    assert "--official-prompts needs --protocol rag-gym" in capsys.readouterr().err
    missing = [*with_official[:-1], str(tmp_path / "nowhere"), "--protocol", "rag-gym"]
    assert main(missing) == 2
    assert "not a checkout" in capsys.readouterr().err
