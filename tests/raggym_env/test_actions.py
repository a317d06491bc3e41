import pytest
from hypothesis import given
from hypothesis import strategies as st

from raggym_env.actions import (
    ActionParseError,
    Answer,
    Search,
    action_to_dict,
    parse_action,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Search: who founded Les Films du Losange", Search("who founded Les Films du Losange")),
        ("  search:  Ed Wood nationality \n", Search("Ed Wood nationality")),
        ("SEARCH[Scott Derrickson]", Search("Scott Derrickson")),
        ("Search(Scott Derrickson)", Search("Scott Derrickson")),
        ("Answer: yes", Answer("yes")),
        ("answer[Cahiers du cinéma]", Answer("Cahiers du cinéma")),
        ("Finish[1999]", Answer("1999")),
        ('{"search": "Éric Rohmer employer"}', Search("Éric Rohmer employer")),
        ('{"action": "search", "query": "x y"}', Search("x y")),
        ('{"action": "Answer", "answer": "B"}', Answer("B")),
        ('{"answer": "no"}', Answer("no")),
        ("Search: line one\nline two", Search("line one\nline two")),
        ("Answer: [1, 2]", Answer("[1, 2]")),
    ],
)
def test_grammar_forms(text, expected):
    assert parse_action(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "could not parse"),
        ("I think the answer is yes", "could not parse"),
        ("Search:", "empty content"),
        ("Answer[   ]", "empty content"),
        ('{"search": ""}', "empty content"),
        ('{"search": "a", "answer": "b"}', "exactly one"),
        ('{"action": "jump"}', "unknown action"),
        ('{"search": 3}', "must be a string"),
        ("[1, 2]", "could not parse"),
        ("{not json", "invalid JSON"),
        ('["search", "x"]', "could not parse"),
    ],
)
def test_unparseable_text_raises_parse_error(text, match):
    with pytest.raises(ActionParseError, match=match):
        parse_action(text)


def test_wrong_type_raises_type_error():
    with pytest.raises(TypeError, match="expects a str"):
        parse_action(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        Search(None)  # type: ignore[arg-type]


def test_empty_objects_are_rejected_at_construction():
    with pytest.raises(ValueError, match="empty"):
        Search("  ")
    with pytest.raises(ValueError, match="empty"):
        Answer("")


def test_actions_are_frozen_and_hashable():
    action = Search("q")
    with pytest.raises(AttributeError):
        action.query = "other"  # type: ignore[misc]
    assert len({Search("q"), Search("q"), Answer("q")}) == 2


def test_action_to_dict():
    assert action_to_dict(Search("q")) == {"type": "search", "text": "q"}
    assert action_to_dict(Answer("a")) == {"type": "answer", "text": "a"}
    assert action_to_dict(None) == {"type": "invalid", "text": ""}


@given(st.text())
def test_arbitrary_text_parses_or_raises_parse_error(text):
    try:
        action = parse_action(text)
    except ActionParseError:
        return
    assert isinstance(action, (Search, Answer))


@given(st.text(min_size=1).filter(lambda s: s.strip() and s == s.strip()))
def test_canonical_text_round_trips(content):
    for action in (Search(content), Answer(content)):
        assert parse_action(action.to_text()) == action


ISSUE_TEXTS = [
    "\u017fearch: x",  # a long s folds to "s" under Unicode case folding
    "f\u0131nish[x]",  # a dotless i
    "f\u0130nish[x]",  # a dotted capital I, which lower-cases to two characters
    "\u212aeyword: x",  # the Kelvin sign folds to "k"
    '{"search": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"search": 1' + "1" * 5_000 + "}",
    '{"action": ' + "[" * 500 + "]" * 500 + ', "query": "q"}',
    '{"\u017fearch": "x"}',
    '{"action": "\u017fearch", "query": "x"}',
]


@pytest.mark.parametrize("text", ISSUE_TEXTS, ids=range(len(ISSUE_TEXTS)))
def test_unicode_keywords_deep_json_and_long_numbers_are_parse_errors(text):
    with pytest.raises(ActionParseError) as caught:
        parse_action(text)
    assert len(str(caught.value)) < 400  # an excerpt of the text, not all of it


def test_keywords_are_ascii_case_insensitive():
    assert parse_action("SEARCH: x") == Search("x")
    assert parse_action("fInIsH[x]") == Answer("x")
    assert parse_action('{"ACTION": "Search", "QUERY": "x"}') == Search("x")
    assert parse_action("Search: \u017fearch") == Search("\u017fearch")  # content is kept
