"""Any text a model (or a user) writes becomes a parsed value or a recorded failure, fast.

Three properties over generated and pathological text:

* ``env.step(text)`` never raises: each text is a parsed action or a recorded invalid one;
* every parser of model output (each agent design's reply parser and forced answer, the
  judge's ranking parser, the action parser, ``extract_choice``, the field readers) returns
  or raises only its documented parse error, on any text;
* each of them reads 1 MB pathological inputs (long runs of spaces, repeated keywords,
  nested brackets, many newlines, near-miss alternations) well within a time budget: every
  regular expression applied to model output runs in linear time.

The texts come from a seeded generator (faster than hypothesis at this volume and the same
on every run); the counts and the worst timings are printed with ``-s``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from raggym.agents.base import LLMAgent, Memory, Parsed
from raggym.agents.critics.llm_judge import RankingParseError, parse_ranking
from raggym.agents.direct import CoTAgent, DirectAgent
from raggym.agents.parsing import (
    clean_condensed,
    fallback_answer_text,
    is_none,
    json_object,
    parse_answer,
    parse_re2search,
    parse_react,
    parse_search_or_answer,
    read_action,
    read_re2search,
)
from raggym.agents.rag import RAGAgent
from raggym.agents.re2search import Re2SearchAgent
from raggym.agents.react import ReActAgent
from raggym.agents.search_o1 import SearchO1Agent
from raggym.testing.llms import MockLLM
from raggym.testing.tasks import make_tiny_env
from raggym_env import Answer, QAExample, Search
from raggym_env.actions import ActionParseError, parse_action
from raggym_env.metrics import extract_choice, paper_score, score_answer
from raggym_env.observation import Observation, build_observation
from raggym_env.sanitize import DEFAULT_MAX_REPLY_CHARS

SEED = 20240612
ENV_TEXTS = 10_000
PARSER_TEXTS = 10_000
MEGABYTE = 1_000_000
# Per parser per 1 MB input. Measured worst on the 2-core development machine under load:
# 0.75 s (extract_choice); a backtracking or quadratic pattern takes minutes at this size,
# so the headroom for a busy CI machine (a timing test with 1.6x headroom failed there)
# costs no power.
BUDGET_S = 5.0
OPTIONS = {"A": "aspirin", "B": "ibuprofen", "C": "paracetamol", "D": "none of these"}

# Pieces model output is made of, near misses and hostile characters included.
_PIECES = (
    "search", "Search", "SEARCH", "answer", "Answer", "finish", "Finish", "action",
    "Action", "query", "Query", "Search query", "Thought", "Thought 2", "Reasoning",
    "Predicted answer", "Predicted_answer", "Unverified claim", "Claim", "Final answer",
    "Ranking", "candidate", "Candidate", "no.", "action", "option", "choice", "letter",
    "the answer is", "The correct option is", "is correct", "I choose", "or", "and",
    "none", "None.", "N/A", "null", "A", "B", "(C)", "D.", "[B]", "a", "i", "e.g.",
    "aspirin", "Paris", "France", "yes", "no", "1", "2", "3", "0", "007", "99999999999",
    ":", "::", "[", "]", "(", ")", "{", "}", '"', "'", "`", ",", ".", ">", "=", "#",
    "**", "__", "-", "*", "/", "\\", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r",
    # Unicode that case-folds onto ASCII letters, invisible and line-breaking characters.
    "\u017fearch", "f\u0131nish", "f\u0130nish", "\uff33\uff25\uff21\uff32\uff23\uff28",
    "\u212a", "\u0130", "\u0131", "\u017f",
    "\u00a0", "\u2028", "\u2029", "\u200b", "\ufeff", "\x00", "\x1c", "\x85", "é", "ß",
    "Ω", "漢字", "\U0001f600",
    # Lone and paired surrogates.
    "\ud800", "\udfff", "\udc80", "\ud83d\ude00", "\ude00\ud83d",
    # Whole forms.
    'Search: who', "Answer: yes", "Search[Paris]", "Finish[France]", "Search(Uranus)",
    "Action: Search[Eiffel Tower]", "Action: Finish[yes]", "Ranking: 2 > 1 = 3",
    '{"search": "q"}', '{"answer": "a"}', '{"action": "search", "query": "q"}',
    '{"action": "answer", "answer": "B"}', '{"Search": "q", "ANSWER": "a"}', '{"answer": 1',
    '{"predicted_answer": "B", "query": "none"}', "{}", "[]", "null", "1e999", "-0",
)  # fmt: skip
_FORMS = (
    "{}",
    '{{"search": {}}}',
    '{{"answer": {}}}',
    '{{"action": {}, "query": "x"}}',
    '{{"action": "search", "query": {}}}',
    "Search: {}",
    "Answer[{}]",
    "Finish({})",
    "Action: {}",
    "Ranking: {}",
    "Thought: {}\nAction: Search[{}]",
    "Reasoning: x\nPredicted answer: {}\nUnverified claim: {}\nQuery: {}",
)


def _hostile(rng: random.Random) -> str:
    """One piece of a hostile shape: deep nesting, a long number, a long run, random code points."""
    size = rng.choice((10, 100, 1_000, 5_000))
    kind = rng.randrange(7)
    if kind == 0:
        return "[" * size + "]" * size
    if kind == 1:
        return "{" + '"a":{' * size + "}" * size + "}"
    if kind == 2:
        return "1" * size
    if kind == 3:
        return rng.choice(" \t\n") * size
    if kind == 4:
        return rng.choice(("search ", "Answer: ", "Ranking: ", "candidate ", "(", "[")) * (
            size // 10 + 1
        )
    if kind == 5:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(1, 40)))
    return "".join(chr(rng.randrange(0x80)) for _ in range(rng.randrange(1, 40)))


def generate_texts(count: int, seed: int) -> list[str]:
    """``count`` model-output-like texts: pieces joined, wrapped in forms, some hostile."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        pieces = []
        for _ in range(rng.randrange(1, 12)):
            pieces.append(_hostile(rng) if rng.random() < 0.04 else rng.choice(_PIECES))
        text = "".join(pieces)
        roll = rng.random()
        if roll < 0.35:
            form = rng.choice(_FORMS)
            text = form.format(*([text] * form.count("{}")))
        elif roll < 0.45:
            text = json.dumps({rng.choice(("search", "answer", "action")): text})
        texts.append(text)
    return texts


# ----------------------------------------------------------------------------- env.step
def test_env_step_records_every_generated_text_as_an_action_or_an_invalid_step():
    env = make_tiny_env(max_steps=50)
    env.reset(seed=0)
    texts = generate_texts(ENV_TEXTS, SEED)
    kinds = {"search": 0, "answer": 0, "invalid": 0}
    tick = time.perf_counter()
    for text in texts:
        _, reward, terminated, truncated, info = env.step(text)
        kind = info["action"]["type"]
        kinds[kind] += 1
        try:
            expected: Search | Answer | None = parse_action(text)
        except ActionParseError:
            expected = None
        if expected is None:
            assert kind == "invalid" and isinstance(info["action_error"], str)
            assert len(info["action_error"]) < 1_000  # an excerpt, not the whole text
        else:
            assert info["action_error"] is None
            assert kind == ("search" if isinstance(expected, Search) else "answer")
        assert reward == reward  # never NaN
        json.dumps(info)  # what is recorded can be stored
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - tick
    print(f"\nenv.step: {len(texts)} generated texts {kinds} in {elapsed:.1f} s")
    assert sum(kinds.values()) >= 10_000
    assert all(kinds.values())  # the generator reaches each outcome


# ----------------------------------------------------------------------------- parsers
def _observation(options: dict[str, str] | None, steps_remaining: int) -> Observation:
    return build_observation("Who built the rocket?", options, [], steps_remaining)


_EXAMPLE = QAExample("q", "Who built the rocket?", ("Martin Marietta",))
_DESIGNS: tuple[type[LLMAgent], ...] = (
    DirectAgent,
    CoTAgent,
    RAGAgent,
    ReActAgent,
    SearchO1Agent,
    Re2SearchAgent,
)


def _check_parsed(parsed: Parsed) -> None:
    if parsed.action is None:
        assert isinstance(parsed.error, str) and len(parsed.error) < 2_000
    else:
        assert isinstance(parsed.action, (Search, Answer))
    assert all(isinstance(v, str) for v in parsed.fields.values())


_SETTINGS = [(options, left) for options in (None, OPTIONS) for left in (3, 1)]


def _agent_parser(
    design: type[LLMAgent], settings: list[tuple[dict[str, str] | None, int]] = _SETTINGS
) -> Callable[[str], Parsed]:
    """A design's reply parser (and forced answer at the last step), as an agent runs it.

    Successive texts rotate through open and multiple-choice questions, at a middle step
    and at the last step, where a non-answer is replaced by the forced answer.
    """
    agent = design(MockLLM(lambda conversation: "Answer: x"))
    observations = [_observation(options, left) for options, left in settings]
    turn = iter(range(1 << 62))

    def parse(text: str) -> Parsed:
        observation = observations[next(turn) % len(observations)]
        memory = Memory(example=_EXAMPLE)
        parsed = agent.parse(agent.admit(text), observation, memory)
        _check_parsed(parsed)
        if int(observation["steps_remaining"]) <= 1:
            assert isinstance(agent.forced_answer(text, parsed, memory), Answer)
        return parsed

    return parse


def _agent_parsers() -> dict[str, Callable[[str], Parsed]]:
    return {f"{design.__name__}.parse": _agent_parser(design) for design in _DESIGNS}


def _ranking(text: str) -> object:
    try:
        return parse_ranking(text, 3)
    except RankingParseError:
        return None


def _action(text: str) -> object:
    try:
        return parse_action(text)
    except ActionParseError:
        return None


def _checked(parser: Callable[[str], Parsed]) -> Callable[[str], Parsed]:
    def run(text: str) -> Parsed:
        parsed = parser(text)
        _check_parsed(parsed)
        return parsed

    return run


PARSERS: dict[str, Callable[[str], Any]] = {
    "parse_action": _action,
    "parse_ranking": _ranking,
    "extract_choice": lambda t: extract_choice(t, OPTIONS),
    "score_answer": lambda t: score_answer(t, ["Martin Marietta"]),
    "score_answer_mc": lambda t: score_answer(t, [], options=OPTIONS, answer_letter="B"),
    "paper_score": lambda t: paper_score(t, "Martin Marietta"),
    "paper_score_mc": lambda t: paper_score(t, "B", multiple_choice=True),
    "parse_answer": _checked(parse_answer),
    "parse_answer_mc": _checked(lambda t: parse_answer(t, OPTIONS)),
    "parse_react": _checked(parse_react),
    "parse_react_mc": _checked(lambda t: parse_react(t, OPTIONS)),
    "parse_search_or_answer": _checked(parse_search_or_answer),
    "parse_re2search": _checked(parse_re2search),
    "parse_re2search_mc": _checked(lambda t: parse_re2search(t, OPTIONS)),
    "read_re2search": read_re2search,
    "read_action": read_action,
    "json_object": json_object,
    "is_none": is_none,
    "clean_condensed": clean_condensed,
    "fallback_answer_text": fallback_answer_text,
}


def test_every_parser_reads_every_generated_output_without_raising():
    parsers = {**PARSERS, **_agent_parsers()}
    texts = generate_texts(PARSER_TEXTS, SEED + 1)
    tick = time.perf_counter()
    for text in texts:
        for parser in parsers.values():
            parser(text)
    elapsed = time.perf_counter() - tick
    calls = len(texts) * len(parsers)
    print(f"\nparsers: {len(texts)} outputs x {len(parsers)} parsers = {calls} calls", end="")
    print(f" in {elapsed:.1f} s")
    assert len(texts) >= 10_000


def test_the_generator_covers_the_issue_examples_and_each_parse_outcome():
    texts = generate_texts(PARSER_TEXTS, SEED + 1)
    assert any("\ud800" in t for t in texts) and any("\u017fearch" in t for t in texts)
    assert any(t.count("[") >= 5_000 for t in texts) and any("1" * 5_000 in t for t in texts)
    parsed = [_action(t) for t in texts]
    assert any(isinstance(p, Search) for p in parsed) and any(isinstance(p, Answer) for p in parsed)
    assert any(p is None for p in parsed)


# ----------------------------------------------------------------------------- timing
def _fill(unit: str, size: int = MEGABYTE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


PATHOLOGICAL = {
    "spaces": "Ranking: candidate" + " " * MEGABYTE + "x",
    "spaces_after_label": "Answer:" + " " * MEGABYTE + "x",
    "newlines": "\n" * MEGABYTE,
    "repeated_answer_phrase": _fill("the answer is B "),
    "repeated_search_label": _fill("Search query: "),
    "repeated_ranking": _fill("Ranking: 1 > "),
    "repeated_labels_on_lines": _fill("Thought 1:\n**Answer**: "),
    "nested_brackets": "[" * MEGABYTE,
    "nested_json": '{"search": ' + "[" * (MEGABYTE // 2) + "]" * (MEGABYTE // 2) + "}",
    "long_number": '{"search": 1' + "1" * MEGABYTE + "}",
    "parentheses": "Search(" + "(" * MEGABYTE,
    "near_miss_phrases": _fill("the most likely option is thus: choose "),
    "near_miss_letters": _fill("B is the "),
    "unclosed_json_answers": _fill('answer": {"'),
    "unclosed_answer_choices": _fill("answer_choice': "),
    "repeated_therefore": _fill("Therefore "),
    "unicode_and_surrogates": _fill("ſİı\ud800 "),
}


@pytest.mark.parametrize("shape", sorted(PATHOLOGICAL))
def test_every_parser_reads_a_megabyte_pathological_input_in_linear_time(shape: str):
    text = PATHOLOGICAL[shape]
    env = make_tiny_env(max_steps=5)
    env.reset(seed=0)
    last_step_mc = [(OPTIONS, 1)]  # the costliest path: choice reading and forced answer
    agents = {f"{d.__name__}.parse": _agent_parser(d, last_step_mc) for d in _DESIGNS}
    parsers = {**PARSERS, **agents, "env.step": env.step}
    timings = {}
    for name, parser in parsers.items():
        tick = time.perf_counter()
        parser(text)
        timings[name] = time.perf_counter() - tick
    worst = max(timings, key=timings.__getitem__)
    print(f"\n{shape}: worst {worst} {timings[worst]:.3f} s")
    slow = {name: round(s, 2) for name, s in timings.items() if s > BUDGET_S}
    assert not slow, f"over {BUDGET_S} s on 1 MB of {shape!r}: {slow}"


def test_agents_admit_replies_capped_at_the_documented_default():
    agent = ReActAgent(MockLLM(lambda conversation: "Answer: x"))
    assert agent.max_reply_chars == DEFAULT_MAX_REPLY_CHARS == 32_000
    admitted = agent.admit("x" * 20_000_000 + "\ud800")
    assert admitted.endswith("…[truncated 19,968,001 chars]")
    assert len(admitted) < 32_100
    assert agent.admit("ok \ud800") == "ok \ufffd"
