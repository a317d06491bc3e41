"""The packaged design prompts: they load, render with their agents' values, are overridable."""

import re

import pytest

from raggym.agents.base import Memory
from raggym.agents.direct import CoTAgent, DirectAgent
from raggym.agents.parsing import parse_answer, parse_re2search, parse_react, parse_search_or_answer
from raggym.agents.prompting import PromptError, available_prompts, load_prompt
from raggym.agents.rag import RAGAgent
from raggym.agents.re2search import Re2SearchAgent
from raggym.agents.react import ReActAgent
from raggym.agents.search_o1 import SearchO1Agent
from raggym.testing.llms import MockLLM
from raggym_env import QAExample

AGENTS = {
    "direct": DirectAgent,
    "cot": CoTAgent,
    "rag": RAGAgent,
    "react": ReActAgent,
    "search_o1": SearchO1Agent,
    "re2search": Re2SearchAgent,
}
PROMPTS = [*AGENTS, "search_o1_condense"]

EXAMPLE = QAExample(
    id="t-1",
    question="Which drug causes ototoxicity?",
    answers=("cisplatin",),
    options={"A": "aspirin", "B": "cisplatin"},
    answer_letter="B",
)
HISTORY = (
    {
        "query": "ototoxic drugs",
        "documents": (
            {"id": "d1", "title": "Cisplatin", "text": "Cisplatin {braces} cause ototoxicity."},
            {"id": "d2", "title": "Aspirin", "text": "Aspirin is an analgesic."},
        ),
    },
)


def observation(options=True, history=HISTORY, steps_remaining=4):
    return {
        "question": EXAMPLE.question,
        "options": (
            ({"letter": "A", "text": "aspirin"}, {"letter": "B", "text": "cisplatin"})
            if options
            else ()
        ),
        "history": history,
        "steps_remaining": steps_remaining,
    }


def memory():
    mem = Memory(example=EXAMPLE)
    mem.notes = [
        {"thought": "Find ototoxic drugs.", "action": "search", "query": "ototoxic drugs"},
        {"parse_error": "expected 'Answer: <x>', got 'hmm'"},
    ]
    return mem


def test_every_design_prompt_is_packaged_and_loads():
    assert set(PROMPTS) <= set(available_prompts())
    for name in PROMPTS:
        template = load_prompt(name)
        assert template.system.strip() and template.user.strip()
        assert len(template.sha256) == 64


@pytest.mark.parametrize("name", sorted(AGENTS))
@pytest.mark.parametrize("options", [True, False])
def test_each_prompt_renders_with_its_agent_values(name, options):
    agent = AGENTS[name](MockLLM(lambda c: ""))
    obs, mem = observation(options), memory()
    values = agent.render(obs, mem)
    assert set(values) == set(agent.template.placeholders)
    messages = agent.messages(obs, mem)
    assert [m["role"] for m in messages] == ["system", "user"]
    text = messages[0]["content"] + messages[1]["content"]
    leftover = {p for p in agent.template.placeholders if "{" + p + "}" in text}
    assert leftover == set()
    assert "Question: Which drug causes ototoxicity?" in text
    assert ("A. aspirin\nB. cisplatin" in text) == options
    assert ("letter of the correct option (A or B)" in text) == options
    assert "Your previous reply could not be read" in text
    assert "You have 4 steps left." in text
    if name in ("rag", "react"):
        assert "Title: Cisplatin\nCisplatin {braces} cause ototoxicity." in text
    if name in ("search_o1", "re2search"):
        assert "Query 1: ototoxic drugs\nAnswer (from documents): Cisplatin: Cisplatin" in text
        condense = agent.condense_messages(obs, HISTORY[0])
        assert set(agent.condense_template.placeholders) == {"question", "query", "documents"}
        assert "Search query: ototoxic drugs" in condense[1]["content"]
        assert "[2] Title: Aspirin" in condense[1]["content"]


def test_last_step_prompts_say_so():
    agent = ReActAgent(MockLLM(lambda c: ""))
    text = agent.messages(observation(steps_remaining=1), Memory(example=EXAMPLE))[1]["content"]
    assert "This is your last step: you must give your final answer now." in text
    assert "Steps so far:\n(none yet)" in text


def output_lines(source: str, labels) -> list[str]:
    return [label for label in labels if re.search(rf"^{re.escape(label)}", source, re.M)]


def test_prompts_ask_for_the_formats_the_parsers_read():
    """Each prompt spells out the labelled lines its parser reads, and such a reply parses."""
    react = load_prompt("react").system
    assert "Thought:" in react and "Search[<query>]" in react and "Finish[<answer>]" in react
    assert parse_react("Thought: t\nAction: Search[q]").action is not None
    for name in ("direct", "cot", "rag"):
        assert "Answer: <your answer>" in load_prompt(name).system
    assert parse_answer("Answer: x").action is not None
    search_o1 = load_prompt("search_o1").system
    assert output_lines(search_o1, ["Reasoning:", "Search:", "Answer:"]) == [
        "Reasoning:", "Search:", "Answer:",
    ]  # fmt: skip
    assert parse_search_or_answer("Reasoning: r\nSearch: q").action is not None
    re2 = load_prompt("re2search").system
    labels = ["Reasoning:", "Predicted answer:", "Unverified claim:", "Query:"]
    assert output_lines(re2, labels) == labels
    assert parse_re2search("Predicted answer: x\nUnverified claim: none").action is not None
    assert "Answer:" in load_prompt("search_o1_condense").system


def test_a_user_prompt_file_overrides_the_packaged_one(tmp_path):
    path = tmp_path / "my_react.txt"
    path.write_text(
        "# placeholders: question, answer_format, trajectory, status\n"
        "=== user ===\nMY PROMPT {question} | {answer_format} | {trajectory} | {status}\n"
    )
    agent = ReActAgent(MockLLM(lambda c: ""), prompt=path)
    assert agent.template.name == str(path)
    messages = agent.messages(observation(), memory())
    assert [m["role"] for m in messages] == ["user"]
    assert messages[0]["content"].startswith("MY PROMPT Question: Which drug")
    assert agent.describe()["prompt_sha256"] == load_prompt(path).sha256

    condense = tmp_path / "condense.txt"
    condense.write_text(
        "# placeholders: question, query, documents\n=== user ===\nC {query} {{literal}}\n"
        "{documents}\n{question}\n"
    )
    o1 = SearchO1Agent(MockLLM(lambda c: ""), condense_prompt=str(condense))
    (message,) = o1.condense_messages(observation(), HISTORY[0])
    assert message["content"].startswith("C ototoxic drugs {literal}\n[1] Title: Cisplatin")


def test_an_undeclared_placeholder_fails_at_load_naming_it(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(
        "# placeholders: question, answer_format, status\n"
        "=== user ===\n{question} {answer_format} {status} {histroy}\n"
    )
    with pytest.raises(PromptError, match="histroy"):
        DirectAgent(MockLLM(lambda c: ""), prompt=path)


def test_a_prompt_missing_an_agent_value_fails_at_render_naming_it(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("# placeholders: question, status\n=== user ===\n{question} {status}\n")
    agent = ReActAgent(MockLLM(lambda c: ""), prompt=path)
    with pytest.raises(PromptError, match="trajectory"):
        agent.messages(observation(), memory())
