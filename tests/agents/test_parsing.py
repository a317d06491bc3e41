"""The parsers: unit cases, never-raise properties on arbitrary text, and round trips."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raggym.agents.base import Parsed
from raggym.agents.parsing import (
    clean_condensed,
    fallback_answer_text,
    find_labels,
    first_line,
    is_none,
    json_object,
    labelled_fields,
    parse_answer,
    parse_choice,
    parse_re2search,
    parse_react,
    parse_search_or_answer,
    read_action,
    read_re2search,
)
from raggym_env import Answer, Search

OPTIONS = {
    "A": "Disclose the error to the patient",
    "B": "Tell the attending that he cannot fail to disclose this mistake",
    "C": "Report the physician to the ethics committee",
    "D": "Refuse to dictate the operative report",
}
PARSERS = {
    "answer": lambda t: parse_answer(t),
    "answer_mc": lambda t: parse_answer(t, OPTIONS),
    "react": lambda t: parse_react(t),
    "react_mc": lambda t: parse_react(t, OPTIONS),
    "search_o1": lambda t: parse_search_or_answer(t),
    "search_o1_mc": lambda t: parse_search_or_answer(t, OPTIONS),
    "re2search": lambda t: parse_re2search(t),
    "re2search_mc": lambda t: parse_re2search(t, OPTIONS),
}


def check_parsed(parsed: Parsed) -> None:
    """The parser contract: an action and no error, or no action and an error message."""
    assert isinstance(parsed, Parsed)
    if parsed.action is None:
        assert isinstance(parsed.error, str) and parsed.error.strip()
    else:
        assert isinstance(parsed.action, (Search, Answer))
        assert parsed.error is None
        if isinstance(parsed.action, Search):
            assert parsed.action.query.strip()
        else:
            assert parsed.action.text.strip()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.fields.items())


# ----------------------------------------------------------------------------- strategies
LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1
).filter(lambda s: s.strip() != "")

KEYS = st.sampled_from(
    [
        "answer", "Answer", "search", "query", "action", "reasoning", "predicted_answer",
        "Predicted answer", "unverified_claim", "claim", "final_answer", "thought",
    ]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(KEYS | st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
JSON_GARBAGE = st.builds(
    lambda prefix, obj, suffix: prefix + json.dumps(obj) + suffix,
    st.text(max_size=20),
    st.dictionaries(KEYS | st.text(max_size=5), JSON_VALUES, max_size=5),
    st.text(max_size=20),
)
LABEL_SOUP = st.lists(
    st.sampled_from(
        [
            "Answer:", "answer :", "**Answer:**", "Thought 1:", "Action:", "Action: Search[",
            "Finish[", "]", "Search:", "Query: none", "Unverified claim:", "Predicted answer:",
            "Reasoning:", "{", "}", "\n", "\r\n", "\r", " ", "B", "(C)", "none", "\x00",
            "\u017fearch:", "Search(", ")", "- Query:", "__Answer__:",
        ]
    )
    | st.text(max_size=8),
    max_size=30,
).map("".join)  # fmt: skip
ANY_TEXT = st.text() | JSON_GARBAGE | LABEL_SOUP


# ----------------------------------------------------------------------------- never raise
@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=ANY_TEXT)
def test_parsers_never_raise_on_arbitrary_text(name, text):
    check_parsed(PARSERS[name](text))


@given(text=ANY_TEXT)
@settings(max_examples=150, deadline=None)
def test_helpers_never_raise_on_arbitrary_text(text):
    assert isinstance(fallback_answer_text(text), str) and fallback_answer_text(text).strip()
    assert isinstance(clean_condensed(text), str)
    read = read_action(text)
    assert read is None or (read[0] in ("search", "answer") and read[1].strip())
    assert isinstance(read_re2search(text).found, bool)
    for item in find_labels(text, ("answer", "predicted answer", "query")):
        assert item.label in ("answer", "predicted answer", "query")
    obj = json_object(text)
    assert obj is None or isinstance(obj, dict)
    assert isinstance(is_none(text), bool)


HUGE = [
    "x" * 1_000_000,
    "{" * 200_000 + "}",
    '{"answer": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "-" * 500_000 + " Answer:",
    "Answer:" * 100_000,
    "Thought: " + "Search[" * 50_000,
    "\n" * 200_000,
    "Reasoning: " + "a " * 300_000 + "\nQuery: none",
]


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parsers_survive_huge_and_pathological_text(name):
    for text in HUGE:
        check_parsed(PARSERS[name](text))


def test_errors_say_what_was_expected_and_truncate_what_came():
    parsed = parse_answer("blah " * 1000)
    assert parsed.action is None
    assert "Answer:" in parsed.error and "blah" in parsed.error
    assert len(parsed.error) < 300
    react = parse_react("I refuse")
    assert "Search[" in react.error and "'I refuse'" in react.error
    assert "Predicted answer" in parse_re2search("nonsense").error


# ----------------------------------------------------------------------------- labelled lines
def test_labels_are_case_insensitive_numbered_bold_and_multiline():
    text = (
        "intro line\n**REASONING:** first\nsecond line\n\n- predicted_Answer: Paris\n"
        "Thought 3: third\nQuery: q1\nquery: q2"
    )
    items = find_labels(text, ("reasoning", "predicted answer", "thought", "query"))
    assert [(i.label, i.line) for i in items] == [
        ("reasoning", 1),
        ("predicted answer", 4),
        ("thought", 5),
        ("query", 6),
        ("query", 7),
    ]
    assert items[0].value == "first\nsecond line"
    assert labelled_fields(text, ("query",)) == {"query": "q1"}
    assert labelled_fields(text, ("query",), last=True) == {"query": "q2"}


def test_a_label_must_open_the_line():
    assert find_labels("the final Answer: 3", ("answer",)) == []
    assert find_labels("Answer (from documents): x", ("answer",)) == []


def test_first_line_and_none_words():
    assert first_line("\n  \n  a b \nc") == "a b"
    assert first_line("") == ""
    for value in ("none", "None.", "N/A", "null", "  NONE ", "None (all verified)", "`none`"):
        assert is_none(value), value
    for value in ("None of the Above director", "Nothing Compares 2 U", "no"):
        assert not is_none(value), value


# ----------------------------------------------------------------------------- final answers
def test_the_last_answer_line_wins():
    parsed = parse_answer("Maybe\nAnswer: Paris\nNo, wait.\nAnswer: London\n")
    assert parsed.action == Answer("London")
    assert parsed.fields["answer"] == "London"
    assert parsed.fields["reasoning"] == "Maybe\nAnswer: Paris\nNo, wait."


def test_answer_forms():
    assert parse_answer("**Final answer:** 1945").action == Answer("1945")
    assert parse_answer('Sure. {"answer": "Rome"}').action == Answer("Rome")
    assert parse_answer('{"answer": 1999}').action == Answer("1999")
    assert parse_answer("Answer:\nParis").action == Answer("Paris")
    assert parse_answer("Answer:   ").action is None
    assert parse_answer("Paris").action is None  # a bare reply is not an answer line


def test_multiple_choice_answers_become_letters():
    assert parse_answer("Answer: B", OPTIONS).action == Answer("B")
    parsed = parse_answer("Reasoning: ethics.\nAnswer: (C) Report the physician", OPTIONS)
    assert parsed.action == Answer("C")
    assert parsed.fields["answer_raw"] == "(C) Report the physician"
    text = "Answer: Refuse to dictate the operative report"
    assert parse_answer(text, OPTIONS).action == Answer("D")
    assert parse_answer("So the correct option is (A).", OPTIONS).action == Answer("A")
    vague = parse_answer("Answer: either B or C", OPTIONS)
    assert vague.action is None and "A, B, C, D" in vague.error
    assert parse_choice("(b)", OPTIONS) == "B"


# ----------------------------------------------------------------------------- ReAct / Search-o1
@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("Thought: x\nAction: Search[Ed Wood]", Search("Ed Wood")),
        ("Thought: x\nAction 2: search[Foo [band]]", Search("Foo [band]")),
        ("Thought: x\nAction: Finish[yes]", Answer("yes")),
        ("Thought: x\nAction: Answer[no]", Answer("no")),
        ("Thought: x\nAction: Search(Ed Wood)", Search("Ed Wood")),
        ("Thought: x\nSearch: Ed Wood", Search("Ed Wood")),
        ("Thought: x\nAnswer: yes", Answer("yes")),
        ("Thought: x\nFinish[Paris", Answer("Paris")),  # a stop string cut the bracket
        ('{"action": "search", "query": "Ed Wood"}', Search("Ed Wood")),
        ('{"answer": "Paris"}', Answer("Paris")),
    ],
)
def test_react_action_forms(text, action):
    assert parse_react(text).action == action


def test_react_first_action_wins_and_fields():
    parsed = parse_react(
        "Thought: I need his birthplace.\nAction: Search[Ed Wood]\nObservation: made up\n"
        "Thought: done\nAction: Finish[Poughkeepsie]"
    )
    assert parsed.action == Search("Ed Wood")
    assert parsed.fields == {
        "thought": "I need his birthplace.",
        "action": "search",
        "query": "Ed Wood",
    }


def test_react_bare_action_line_ends_the_thought():
    parsed = parse_react("Thought: two lines\nof thinking\nFinish[Paris]\ntrailing")
    assert parsed.action == Answer("Paris")
    assert parsed.fields["thought"] == "two lines\nof thinking"


def test_react_errors():
    empty = parse_react("Thought: x\nAction: Search[]")
    assert empty.action is None and "Action line" in empty.error
    assert empty.fields["thought"] == "x"
    unknown = parse_react("Thought: x\nAction: Lookup[y]")
    assert unknown.action is None and "Lookup" in unknown.error
    mc = parse_react("Thought: x\nAction: Finish[B]", OPTIONS)
    assert mc.action == Answer("B")
    assert parse_react("Thought: x\nAction: Finish[aspirin]", OPTIONS).action is None


def test_search_o1_reasoning_then_one_action():
    parsed = parse_search_or_answer(
        "Reasoning: I need the year.\nIt matters.\nSearch: Ed Wood birth year\nAnswer: 1924"
    )
    assert parsed.action == Search("Ed Wood birth year")
    assert parsed.fields["reasoning"] == "I need the year.\nIt matters."
    answer = parse_search_or_answer("Reasoning: known.\nAnswer: 1924")
    assert answer.action == Answer("1924") and answer.fields["action"] == "answer"
    assert parse_search_or_answer("Reasoning: hmm").action is None


def test_read_action():
    assert read_action("Search[a] and more") == ("search", "a")
    assert read_action("Finish: b\nc") == ("answer", "b")
    assert read_action("Searching[x]") is None
    assert read_action("Search[   ]") is None
    assert read_action("Search[Foo] [x]\nmore]") == ("search", "Foo] [x")  # first line's ]
    assert read_action("Finish[multi\nline  answer]") == ("answer", "multi line answer")
    assert read_action("Finish[unclosed\nnext line") == ("answer", "unclosed")


# ----------------------------------------------------------------------------- Re2Search
def test_re2search_searches_an_unverified_claim():
    parsed = parse_re2search(
        "Reasoning: Ed Wood was born in Poughkeepsie.\nPredicted answer: yes\n"
        "Unverified claim: Ed Wood was American.\nQuery: Ed Wood nationality"
    )
    assert parsed.action == Search("Ed Wood nationality")
    assert parsed.fields["predicted_answer"] == "yes"
    assert parsed.fields["claim"] == "Ed Wood was American."
    assert parsed.fields["reasoning"] == "Ed Wood was born in Poughkeepsie."


@pytest.mark.parametrize(
    "tail",
    [
        "Unverified claim: none\nQuery: none",
        "Unverified claim: None.\nQuery: Ed Wood",  # claim none: everything verified
        "Unverified claim: something\nQuery: N/A",  # nothing to search
        "Unverified claim: none",
    ],
)
def test_re2search_answers_when_everything_is_verified(tail):
    parsed = parse_re2search(f"Reasoning: r\nPredicted answer: yes\n{tail}")
    assert parsed.action == Answer("yes")
    assert parsed.fields["predicted_answer"] == "yes"


def test_re2search_json_and_multiple_choice():
    obj = {
        "Reasoning": "r",
        "Predicted Answer": "(B) Tell the attending",
        "unverified-claim": "none",
        "query": "none",
    }
    parsed = parse_re2search("```json\n" + json.dumps(obj) + "\n```", OPTIONS)
    assert parsed.action == Answer("B")
    assert parsed.fields["predicted_answer"] == "B"
    searching = parse_re2search(
        json.dumps({"predicted_answer": "C", "claim": "c", "query": "ethics committee"}),
        OPTIONS,
    )
    assert searching.action == Search("ethics committee")
    assert searching.fields["predicted_answer"] == "C"


def test_re2search_without_query_or_answer_is_an_error():
    parsed = parse_re2search("Reasoning: unsure\nUnverified claim: x\nQuery: none")
    assert parsed.action is None and "Predicted answer" in parsed.error
    assert parsed.fields["reasoning"] == "unsure"


# ----------------------------------------------------------------------------- helpers
def test_fallback_answer_text_skips_actions_and_labels():
    assert fallback_answer_text("Thought: It is Paris.\nAction: Search[x]") == "It is Paris."
    assert fallback_answer_text("Reasoning: hmm\nSearch: x\nQuery: y") == "hmm"
    assert fallback_answer_text("   ") == "unknown"
    assert len(fallback_answer_text("y" * 1000)) == 200


def test_clean_condensed():
    assert clean_condensed("Answer: The capital\n is Paris.") == "The capital is Paris."
    assert clean_condensed("plain text") == "plain text"
    assert clean_condensed("w " * 500, max_words=10).endswith(" ...")
    assert clean_condensed("  \n ") == ""


# ----------------------------------------------------------------------------- round trips
@given(query=LINE, thought=LINE)
@settings(max_examples=200, deadline=None)
def test_react_round_trip(query, thought):
    for template in ("Thought: {t}\nAction: Search[{q}]", "Thought: {t}\nSearch: {q}"):
        parsed = parse_react(template.format(t=thought, q=query))
        assert parsed.action == Search(query.strip()), template
        assert parsed.fields["thought"] == thought.strip()
    for template in ("Thought: {t}\nAction: Finish[{q}]", "Thought: {t}\nAnswer: {q}"):
        assert parse_react(template.format(t=thought, q=query)).action == Answer(query.strip())


@given(answer=LINE, reasoning=LINE)
@settings(max_examples=200, deadline=None)
def test_answer_round_trip(answer, reasoning):
    parsed = parse_answer(f"{reasoning}\nAnswer: {answer}")
    assert parsed.action == Answer(answer.strip())
    parsed_json = parse_answer(json.dumps({"answer": answer}))
    assert parsed_json.action == Answer(answer.strip())


@given(query=LINE, reasoning=LINE)
@settings(max_examples=200, deadline=None)
def test_search_o1_round_trip(query, reasoning):
    parsed = parse_search_or_answer(f"Reasoning: {reasoning}\nSearch: {query}")
    assert parsed.action == Search(query.strip())
    assert parsed.fields["reasoning"] == reasoning.strip()
    assert parse_search_or_answer(f"Reasoning: {reasoning}\nAnswer: {query}").action == Answer(
        query.strip()
    )


@given(
    reasoning=LINE,
    predicted=LINE.filter(lambda s: not is_none(s)),
    claim=LINE.filter(lambda s: not is_none(s)),
    query=LINE.filter(lambda s: not is_none(s)),
    as_json=st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_re2search_round_trip(reasoning, predicted, claim, query, as_json):
    def render(query: str) -> str:
        if as_json:
            keys = ("reasoning", "predicted_answer", "unverified_claim", "query")
            return json.dumps(dict(zip(keys, (reasoning, predicted, claim, query), strict=True)))
        return (
            f"Reasoning: {reasoning}\nPredicted answer: {predicted}\n"
            f"Unverified claim: {claim}\nQuery: {query}"
        )

    text = render(query)
    parsed = parse_re2search(text)
    assert parsed.action == Search(query.strip())
    assert parsed.fields["predicted_answer"] == predicted.strip()
    assert parsed.fields["claim"] == claim.strip()
    assert parsed.fields["reasoning"] == reasoning.strip()
    done = parse_re2search(render("none"))
    assert done.action == Answer(predicted.strip())


@given(letter=st.sampled_from("ABCD"), wrap=st.sampled_from(["{}", "({})", "{}.", "**{}**"]))
def test_choice_round_trip(letter, wrap):
    assert parse_answer("Answer: " + wrap.format(letter), OPTIONS).action == Answer(letter)
    assert parse_react(f"Thought: t\nAction: Finish[{letter}]", OPTIONS).action == Answer(letter)
    text = f"Reasoning: r\nPredicted answer: {wrap.format(letter)}\nUnverified claim: none"
    assert parse_re2search(text, OPTIONS).action == Answer(letter)
