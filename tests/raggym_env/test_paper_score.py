"""paper_score: the RAG-Gym paper's per-item scoring, its linear-time scans against the regexes."""

from __future__ import annotations

import random
import re
import time

import pytest

from raggym_env.metrics import (
    locate_answer,
    normalize_answer,
    normalize_multichoice,
    paper_score,
)

# ------------------------------------------------------------------------------------------
# The official script's regular expressions, kept here only as the reference to compare with
# ------------------------------------------------------------------------------------------

_REF_LOCATE_GROUPS = [
    r"answer_choice[\"\']:\s*\{?[\"\']?(.+?)[\"\']?\s*\}",
    r"answer[\"\']:\s*\{?[\"\']?(.+?)[\"\']?\s*\}",
    r"answer is:?\s*\{?[\"\']?(.+?)[\"\']?\s*\}",
    r"[Aa]nswer\*?\*?:\s*(A|B|C|D)",
    r"is:?\s*\*?\*?(A|B|C|D)",
]

_REF_MULTICHOICE = [
    r"(A|B|C|D)",
    r"^\s*[\"\']?(A|B|C|D)[$/,\.\"\':]",
    r"^\s*(A|B|C|D) or",
    r"^\s*(A|B|C|D) and",
    r"[Oo]ption (A|B|C|D)",
    r":\s*(A|B|C|D)",
    r"\$?\\boxed\{(A|B|C|D)",
    r"\*\*[Aa]nswer:?\*\*\s*(A|B|C|D)",
    r"[Aa]nswer is:?\s*\{?[\"\']?(A|B|C|D)",
    r"Therefore.*(A|B|C|D)",
    r"-?-?>\s*\{?[\"\']?(A|B|C|D)",
    r"is:?[\s\n]*\*?\*?(A|B|C|D)",
]


def reference_locate(text: str | None) -> str:
    """The official locate_answer, regex for regex."""
    if text is None:
        return "NA"
    text = re.sub(r"\s+", " ", text)
    for pattern in _REF_LOCATE_GROUPS:
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return text.strip()


def reference_multichoice(text: str) -> str:
    """The official normalize_answer_multichoice, all twelve patterns in order."""
    for index, pattern in enumerate(_REF_MULTICHOICE):
        hits = re.findall(pattern, text)
        if hits:
            return hits[0] if index == 4 else hits[0].upper()
    return text.strip()


_PIECES = [
    "answer", "answer_choice", "Answer", "answer is", "is", "is:", '"', "'", ":", "{", "}",
    " ", "  ", "\n", "\t", "A", "B", "C", "D", "E", "a", "x", "*", "**", "Therefore",
    "Option", "option", "\\boxed{", "$", "->", "-->", ">", "-", ",", ".", "/", " or", " and",
    "NA", "Paris", "\u00e9", "\u00a0", 'answer":', "answer':", 'answer_choice":',
    "answer_choice':", '"}', "'}", " }", "{'", "Answer:", "Answer**:", "answer*:",
]  # fmt: skip


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 14)))


@pytest.mark.parametrize("seed", range(4))
def test_locate_answer_matches_official_regexes_on_random_text(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5000):
        text = _random_text(rng)
        assert locate_answer(text) == reference_locate(text), repr(text)


@pytest.mark.parametrize("seed", range(4))
def test_each_locate_pattern_matches_its_regex_without_collapsing(seed: int) -> None:
    # The scans must also agree with every single pattern on text with raw newlines and
    # whitespace runs, so they hold independently of the whitespace collapsing step.
    from raggym_env import metrics

    scans = [
        lambda t: metrics._locate_lazy(t, "answer_choice", "quote-colon"),
        lambda t: metrics._locate_lazy(t, "answer", "quote-colon"),
        lambda t: metrics._locate_lazy(t, "answer is", "optional-colon"),
        metrics._answer_colon_letter,
        metrics._is_letter,
    ]
    rng = random.Random(100 + seed)
    for _ in range(3000):
        text = _random_text(rng)
        for scan, pattern in zip(scans, _REF_LOCATE_GROUPS, strict=True):
            found = re.search(pattern, text)
            assert scan(text) == (found.group(1) if found else None), (pattern, text)


@pytest.mark.parametrize("seed", range(4))
def test_normalize_multichoice_matches_official_regexes_on_random_text(seed: int) -> None:
    rng = random.Random(200 + seed)
    for _ in range(5000):
        text = _random_text(rng)
        assert normalize_multichoice(text) == reference_multichoice(text), repr(text)


def test_random_texts_reach_every_locate_pattern() -> None:
    # The equivalence tests are only worth something if the random texts exercise each branch.
    rng = random.Random(7)
    reached = [0] * len(_REF_LOCATE_GROUPS)
    for _ in range(5000):
        text = re.sub(r"\s+", " ", _random_text(rng))
        for index, pattern in enumerate(_REF_LOCATE_GROUPS):
            if re.search(pattern, text):
                reached[index] += 1
                break
    assert min(reached) >= 100, reached


def _fill(unit: str, size: int = 200_000) -> str:
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize(
    "text",
    [
        _fill('answer": '),
        _fill("answer is "),
        _fill("answer_choice': {"),
        _fill("Therefore "),
        _fill("is: "),
        "}" + _fill("answer is: {'"),
        "Answer**:" + _fill(" ", 199_991),
        "answer\": '" + _fill("x", 199_990),
    ],
)
def test_adversarial_text_is_scored_in_linear_time(text: str) -> None:
    assert len(text) >= 200_000
    start = time.perf_counter()
    for multiple_choice in (False, True):
        paper_score(text, "B", multiple_choice=multiple_choice)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------------------------
# Hand-computed cases
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "located"),
    [
        ('{"predicted_answer": "Paris"}', "Paris"),
        ('{"answer_choice": "C"} and {"answer": "B"}', "C"),
        ("{'answer': {'final': 'x'}}", "final': 'x"),  # brace and quote skipped, shortest group
        ("The answer is: Paris }", "Paris"),
        ("The answer is Paris.", "The answer is Paris."),  # no brace: the whole text
        ("**Answer**: C because", "C"),
        ("it is: **D**", "D"),
        ("  two\n\nlines  ", "two lines"),
        ('answer": "}', '"'),  # the group needs one character, so the quote is taken
        (None, "NA"),
    ],
)
def test_locate_answer_hand_cases(raw: str | None, located: str) -> None:
    assert locate_answer(raw) == located
    assert reference_locate(raw) == located


def test_open_question_scores() -> None:
    assert paper_score('{"predicted_answer": "Paris"}', "paris") == {
        "em": 1.0,
        "f1": 1.0,
        "precision": 1.0,
        "recall": 1.0,
    }
    # Articles and punctuation are dropped before comparing.
    assert paper_score('{"answer": "The Eiffel Tower!"}', "eiffel tower")["em"] == 1.0
    # Partial overlap: pred "eiffel tower paris" vs gold "eiffel tower" -> P 2/3, R 1.
    scores = paper_score("Eiffel Tower, Paris", "The Eiffel Tower")
    assert scores["em"] == 0.0
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(0.8)


def test_yes_no_mismatch_gets_no_partial_credit() -> None:
    assert paper_score("yes", "yes it is")["f1"] == 0.0
    assert paper_score("no", "yes") == {"em": 0.0, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    assert paper_score("Yes.", "yes")["em"] == 1.0


def test_only_the_one_gold_string_counts() -> None:
    assert paper_score("NYC", "New York City")["em"] == 0.0  # no aliases


def test_multiple_choice_answer_is_b() -> None:
    scores = paper_score("The answer is B.", "B", multiple_choice=True)
    assert scores["acc"] == 1.0
    assert set(scores) == {"em", "f1", "precision", "recall", "acc"}


def test_multiple_choice_stray_capital_wins() -> None:
    # The first capital A-D anywhere decides, even inside an ordinary word.
    assert paper_score("According to guidelines, B", "B", multiple_choice=True)["acc"] == 0.0
    assert paper_score("According to guidelines, B", "A", multiple_choice=True)["acc"] == 1.0
    assert normalize_multichoice("Dx: the answer is B") == "D"
    assert normalize_multichoice("none here") == "none here"


def test_multiple_choice_json_answer() -> None:
    assert paper_score('{"answer_choice": "C"}', "C", multiple_choice=True)["acc"] == 1.0


def test_none_prediction_is_scored_as_the_text_none() -> None:
    # The script calls str() on the prediction, so None is scored as "None", which has no
    # capital A-D and never matches a letter.
    assert paper_score(None, "A", multiple_choice=True)["acc"] == 0.0
    assert paper_score(None, "None")["em"] == 1.0
    assert normalize_answer(locate_answer(None)) == "na"  # the helper alone keeps "NA"


def test_dict_prediction_uses_its_smallest_value() -> None:
    assert paper_score({"x": "Rome", "y": "Paris"}, "Paris")["em"] == 1.0
    assert paper_score({"first": "C", "second": "B"}, "B", multiple_choice=True)["acc"] == 1.0
    with pytest.raises(ValueError, match="dict prediction"):
        paper_score({}, "B")
    with pytest.raises(ValueError, match="dict prediction"):
        paper_score({"a": 1, "b": "x"}, "B")


def test_non_string_prediction_is_stringified() -> None:
    assert paper_score(1999, "1999")["em"] == 1.0


@pytest.mark.parametrize(
    ("answer", "gold", "multiple_choice", "expected"),
    [
        ("Ed Wood", "Ed Wood", False, 1.0),
        ("the answer is Ed Wood", "Ed Wood", False, 2 * 0.5 * 1.0 / 1.5),  # not located
        ("yes", "no", False, 0.0),
        (None, "Ed Wood", False, 0.0),
        ("B", "B", True, 1.0),
        ("b.", "B", True, 1.0),
        ("B. Aspirin", "B", True, 0.0),  # exact match, not the letter normaliser
    ],
)
def test_paper_outcome_is_the_collection_label(answer, gold, multiple_choice, expected):
    from raggym_env.metrics import paper_outcome

    assert paper_outcome(answer, gold, multiple_choice) == pytest.approx(expected)
