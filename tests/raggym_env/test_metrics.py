from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raggym_env.metrics import (
    cover_exact_match,
    evidence_complete,
    evidence_recall,
    exact_match,
    extract_choice,
    f1,
    f1_precision_recall,
    multiple_choice_accuracy,
    normalize_answer,
    score_answer,
)

# ------------------------------------------------------------------------------------------
# normalize_answer / exact_match
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a  cat,  an apple & THE dog. ", "cat apple dog"),
        ("theatre", "theatre"),  # articles only as whole words
        ("U.S.A.", "usa"),
        ("rock-n-roll", "rocknroll"),  # punctuation is removed, not replaced by a space
        ("\uff21", "\uff41"),  # full-width letters are lowered, not treated as the article
        ("Café Müller", "café müller"),
        ("", ""),
        ("a an the", ""),
        ("Tab\tand\nnewline", "tab and newline"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_normalize_order_punctuation_before_articles() -> None:
    # "a." becomes "a" after punctuation removal, then the article is dropped (official order).
    assert normalize_answer("plan a.") == "plan"
    # "the's" loses the apostrophe first ("thes"), which is then not an article.
    assert normalize_answer("the's") == "thes"


def test_exact_match_official_cases() -> None:
    assert exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["eiffel tower"]) == 0.0
    assert exact_match("", [""]) == 1.0  # as the official script: both normalize to ""


def test_exact_match_aliases_and_none() -> None:
    assert exact_match("NYC", ["New York City", "nyc"]) == 1.0
    assert exact_match(None, ["New York City"]) == 0.0
    assert exact_match("new york", "New York") == 1.0  # a lone string is one gold answer


def test_no_golds_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one gold"):
        exact_match("x", [])
    with pytest.raises(ValueError, match="at least one gold"):
        f1("x", [])


def test_unicode_answers() -> None:
    assert exact_match("Zürich", ["zürich"]) == 1.0
    assert exact_match("東京", ["東京"]) == 1.0
    assert f1("São Paulo Brazil", ["são paulo"]) == pytest.approx(0.8)
    assert cover_exact_match("It is in São Paulo.", ["Sao Paulo", "São Paulo"]) == 1.0


# ------------------------------------------------------------------------------------------
# F1
# ------------------------------------------------------------------------------------------


def test_f1_partial_overlap_exact_fractions() -> None:
    # pred tokens: [barack, obama, jr] ; gold: [barack, hussein, obama] -> 2 common
    f, p, r = f1_precision_recall("Barack Obama Jr.", "Barack Hussein Obama")
    assert p == pytest.approx(2 / 3)
    assert r == pytest.approx(2 / 3)
    assert f == pytest.approx(2 / 3)
    # pred [new, york] ; gold [new, york, city] -> p=1, r=2/3, f1=0.8
    assert f1_precision_recall("the New York", "New York City") == pytest.approx((0.8, 1.0, 2 / 3))


def test_f1_counts_repeated_tokens_once_per_occurrence() -> None:
    # pred [paris, paris] ; gold [paris] -> common 1: p=1/2, r=1, f1=2/3
    assert f1("Paris Paris", ["Paris"]) == pytest.approx(2 / 3)


def test_f1_no_overlap_and_empty() -> None:
    assert f1_precision_recall("London", "Paris") == (0.0, 0.0, 0.0)
    assert f1_precision_recall("", "") == (0.0, 0.0, 0.0)  # official: no common tokens
    assert f1_precision_recall(None, "Paris") == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("yes", "yes it is", 0.0),  # yes/no prediction differing from the gold
        ("yes it is", "yes", 0.0),  # yes/no gold differing from the prediction
        ("no", "no", 1.0),
        ("No.", "no", 1.0),
        ("noanswer", "no answer", 0.0),
        ("no answer", "noanswer", 0.0),
        ("noanswer", "noanswer", 1.0),
        ("yes", "no", 0.0),
        ("not yes", "yes sir", 0.5),  # neither side is exactly a special answer
    ],
)
def test_f1_yes_no_rule(pred: str, gold: str, expected: float) -> None:
    assert f1(pred, [gold]) == pytest.approx(expected)


def test_f1_max_over_aliases() -> None:
    golds = ["Barack Hussein Obama", "Obama"]
    assert f1("Obama", golds) == 1.0
    assert f1("President Obama", golds) == pytest.approx(2 / 3)
    assert f1(None, golds) == 0.0


# ------------------------------------------------------------------------------------------
# Cover EM
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "golds", "expected"),
    [
        ("It was built in 1999.", ["1999"], 1.0),
        ("It was built in 1999.", ["1"], 0.0),  # no partial-token containment
        ("a party", ["art"], 0.0),
        ("The answer is New York City", ["new york"], 1.0),
        ("York New", ["new york"], 0.0),  # contiguous, ordered
        ("The Eiffel Tower", ["eiffel tower"], 1.0),
        ("Paris", ["Paris, France"], 0.0),  # the gold must be inside the prediction
        ("nothing", ["x", "nothing at all", "nothing"], 1.0),
        (None, ["x"], 0.0),
        ("", ["the"], 1.0),  # empty gold covers only an empty prediction
        ("something", ["the"], 0.0),
    ],
)
def test_cover_exact_match(pred: str | None, golds: list[str], expected: float) -> None:
    assert cover_exact_match(pred, golds) == expected


# ------------------------------------------------------------------------------------------
# extract_choice
# ------------------------------------------------------------------------------------------

OPTIONS = {
    "A": "Aspirin",
    "B": "Ibuprofen",
    "C": "C. difficile infection",
    "D": "Warfarin",
    "E": "Heparin",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("B)", "B"),
        ("**B**", "B"),
        ("[D]", "D"),
        ("  e  ", "E"),  # a lone lower-case letter is unambiguous
        ("Answer: B", "B"),
        ("**Answer:** B", "B"),
        ("Answer: **(B)**", "B"),
        ("The answer is (C).", "C"),
        ("answer is option D", "D"),
        ("Final answer: d", "D"),
        ("the answer is b", "B"),
        ("The correct option is C.", "C"),
        ("The best choice would be (E) Heparin.", "E"),
        ("I would choose B", "B"),
        ("Option B is correct", "B"),
        ("(C) is the right answer", "C"),
        ('{"answer": "B"}', "B"),
        ('```json\n{"answer": "(D)", "reason": "anticoagulant"}\n```', "D"),
        ("{'answer': 'E'}", "E"),  # not JSON, still a clear key/value
        ('{"answer": "Warfarin"}', "D"),
        ("B: Ibuprofen", "B"),
        ("B. Ibuprofen is an NSAID.", "B"),
        ("(A) Aspirin", "A"),
        ("a) aspirin", "A"),
        ("Aspirin", "A"),  # equal to one option's text
        ("aspirin!", "A"),
        ("C. difficile infection", "C"),
        ("The answer is warfarin.", "D"),
        ("The answer is A because aspirin inhibits COX.", "A"),
        ("The answer is A.", "A"),
        ("Reasoning: heparin acts fast.\n\n**E**", "E"),
        ("Let me think.\nC\n", "C"),
        ("The answer is B. B is the best option.", "B"),  # the same letter twice is fine
    ],
)
def test_extract_choice_forms(text: str, expected: str) -> None:
    assert extract_choice(text, OPTIONS) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "A patient with chest pain should be given aspirin and ibuprofen.",
        "Answer: A patient with atrial fibrillation needs anticoagulation.",
        "the answer is a drug that inhibits platelets",
        "I think so.",
        "answer: I don't know",
        "C. difficile is the most likely organism here.",  # an abbreviation, not option C
        "E. coli",
        "The answer is B-cell lymphoma.",
        "answer is e.g. warfarin or heparin",
        "F",  # not an option
        "Answer: F",
        "No idea.",
    ],
)
def test_extract_choice_none(text: str | None) -> None:
    assert extract_choice(text, OPTIONS) is None


@pytest.mark.parametrize(
    "text",
    [
        "Answer: B or C",
        "The answer is B, but the answer could be C.",
        "A. Aspirin\nB. Ibuprofen\nC. C. difficile infection",  # a list of options, not a choice
        "Option A is correct. Option D is correct.",
        '{"answer": "maybe"} The answer is B. The answer is C.',
    ],
)
def test_extract_choice_ambiguous_is_none(text: str) -> None:
    assert extract_choice(text, OPTIONS) is None


def test_extract_choice_more_explicit_form_wins() -> None:
    # JSON outranks prose; an answer phrase outranks a leading letter.
    assert extract_choice('Option C looks tempting. {"answer": "D"}', OPTIONS) == "D"
    assert extract_choice("A. Aspirin is wrong.\nThe answer is B.", OPTIONS) == "B"


def test_extract_choice_only_letters_in_options() -> None:
    two = {"A": "yes", "B": "no"}
    assert extract_choice("C", two) is None
    assert extract_choice("The answer is C.", two) is None
    assert extract_choice("no", two) == "B"
    assert extract_choice("B", {}) is None


def test_extract_choice_keeps_key_spelling() -> None:
    lower = {"a": "red", "b": "blue"}
    assert extract_choice("B", lower) == "b"
    assert extract_choice("The answer is (b).", lower) == "b"


def test_extract_choice_medqa_like() -> None:
    options = {
        "A": "Ampicillin",
        "B": "Ceftriaxone",
        "C": "Ciprofloxacin",
        "D": "Doxycycline",
        "E": "Nitrofurantoin",
    }
    long_cot = (
        "A 23-year-old woman presents with dysuria. A urine culture grows E. coli. "
        "Among the options, nitrofurantoin is first-line for uncomplicated cystitis.\n"
        "Therefore, the answer is E."
    )
    assert extract_choice(long_cot, options) == "E"
    assert extract_choice("A 45-year-old man with fever. I pick D.", options) == "D"
    assert extract_choice("A 45-year-old man with fever.", options) is None
    assert extract_choice("Answer: (C) Ciprofloxacin", options) == "C"
    assert extract_choice("### Answer\nB", options) == "B"


LETTERS = "ABCDE"
option_maps = st.dictionaries(
    st.sampled_from(LETTERS + "abcde"), st.text(max_size=20), min_size=1, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.none(), st.text(max_size=200)), options=option_maps)
def test_extract_choice_never_raises_and_stays_in_options(
    text: str | None, options: dict[str, str]
) -> None:
    choice = extract_choice(text, options)
    assert choice is None or choice in options


answerish = st.lists(
    st.one_of(
        st.sampled_from(
            ["Answer:", "answer is", "(", ")", "A", "B", "c", "{", "}", '"answer"', ":", "\n", "."]
        ),
        st.text(alphabet="ABCabc .:()*{}\"'\n", max_size=5),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=answerish)
def test_extract_choice_answer_like_noise(text: str) -> None:
    choice = extract_choice(text, {"A": "alpha", "B": "beta", "C": "gamma"})
    assert choice in {None, "A", "B", "C"}


@settings(max_examples=100, deadline=None)
@given(letter=st.sampled_from(LETTERS), prefix=st.sampled_from(["", "Answer: ", "The answer is "]))
def test_extract_choice_decorated_letters(letter: str, prefix: str) -> None:
    options = {k: f"option {k}" for k in LETTERS}
    for form in (letter, f"({letter})", f"{letter}.", f"{letter})", f"**{letter}**"):
        assert extract_choice(prefix + form, options) == letter


@pytest.mark.parametrize(
    "text",
    [
        "answer" + " " * 5000 + "!!",
        "answer" + " \n" * 5000 + "x",
        "Answer: A patient " * 3000,
        "The answer is " * 3000,
        "(" + " " * 5000 + "B" + " " * 5000,
        "{" * 3000 + "}" * 3000,
        '"answer" : ' * 3000,
        "B is" + "\t" * 5000 + "correct",
    ],
)
def test_extract_choice_is_fast_on_adversarial_text(text: str) -> None:
    start = time.perf_counter()
    extract_choice(text, OPTIONS)
    assert time.perf_counter() - start < 1.0


def test_multiple_choice_accuracy() -> None:
    assert multiple_choice_accuracy("The answer is (B).", "B", OPTIONS) == 1.0
    assert multiple_choice_accuracy("C", "B", OPTIONS) == 0.0
    assert multiple_choice_accuracy(None, "B", OPTIONS) == 0.0
    with pytest.raises(ValueError, match="not one of the options"):
        multiple_choice_accuracy("B", "Z", OPTIONS)


# ------------------------------------------------------------------------------------------
# Evidence and score_answer
# ------------------------------------------------------------------------------------------


def test_evidence_recall_and_complete() -> None:
    assert evidence_recall(["d1", "d3", "d1"], ["d1", "d2"]) == 0.5
    assert evidence_recall(iter(["d2", "d1"]), ["d1", "d2", "d1"]) == 1.0  # distinct gold
    assert evidence_recall([], ["d1"]) == 0.0
    assert evidence_recall(["d1"], []) is None
    assert evidence_complete(["d1"], ["d1", "d2"]) == 0.0
    assert evidence_complete({"d1", "d2", "x"}, ("d1", "d2")) == 1.0
    assert evidence_complete(["d1"], ()) is None


def test_score_answer_open_qa() -> None:
    scores = score_answer("the Eiffel Tower in Paris", ["Eiffel Tower"])
    assert set(scores) == {"em", "f1", "cover_em"}
    assert scores["em"] == 0.0
    assert scores["cover_em"] == 1.0
    assert scores["f1"] == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    assert score_answer(None, ["x"]) == {"em": 0.0, "f1": 0.0, "cover_em": 0.0}


def test_score_answer_multiple_choice() -> None:
    scores = score_answer("B", ["B", "Ibuprofen"], options=OPTIONS, answer_letter="B")
    assert scores == {"em": 1.0, "f1": 1.0, "cover_em": 1.0, "accuracy": 1.0}
    scores = score_answer(
        "The answer is ibuprofen.", ["B", "Ibuprofen"], options=OPTIONS, answer_letter="B"
    )
    assert scores == {"em": 1.0, "f1": 1.0, "cover_em": 1.0, "accuracy": 1.0}
    # option "A" normalises to "" under the official rules; MC scoring must not be fooled
    scores = score_answer("The", ["A", "Aspirin"], options=OPTIONS, answer_letter="A")
    assert scores == {"em": 0.0, "f1": 0.0, "cover_em": 0.0, "accuracy": 0.0}
    with pytest.raises(ValueError, match="both options and answer_letter"):
        score_answer("B", ["B"], options=OPTIONS)
