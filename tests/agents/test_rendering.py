"""The pure rendering helpers: questions, options, documents, pairs, trajectories, notes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raggym.agents.rendering import (
    answer_format,
    check_doc_words,
    documents_excerpt,
    excerpt,
    options_map,
    pair_steps,
    render_documents,
    render_qa_pairs,
    render_question,
    render_search_history,
    render_trajectory,
    status_note,
    truncate_words,
)

OPTIONS = (
    {"letter": "A", "text": "aspirin"},
    {"letter": "B", "text": "cisplatin"},
)


def doc(title, text="some text", doc_id=None):
    return {"id": doc_id or title, "title": title, "text": text}


def obs(question="Who?", options=(), history=(), steps_remaining=5):
    return {
        "question": question,
        "options": options,
        "history": history,
        "steps_remaining": steps_remaining,
    }


def test_question_with_and_without_options():
    assert render_question(obs("Who directed Sinister? ")) == "Question: Who directed Sinister?"
    text = render_question(obs("Which drug?", OPTIONS))
    assert text == "Question: Which drug?\nOptions:\nA. aspirin\nB. cisplatin"
    assert options_map(OPTIONS) == {"A": "aspirin", "B": "cisplatin"}
    assert options_map(()) == {}


def test_answer_format_names_the_letters_for_multiple_choice():
    assert "(A or B)" in answer_format(obs(options=OPTIONS))
    four = tuple({"letter": c, "text": c} for c in "ABCD")
    assert "(A, B, C or D)" in answer_format(obs(options=four))
    assert "letter" not in answer_format(obs())
    assert "short answer" in answer_format(obs())


def test_documents_are_numbered_titled_and_capped():
    text = render_documents([doc("Ed  Wood", "one two three four five six"), doc("B", "x")], 4)
    assert text == "[1] Title: Ed Wood\none two three four ...\n[2] Title: B\nx"
    assert render_documents([]) == "(no documents were found)"
    assert render_documents([doc("", "t")]).startswith("[1] Title: (untitled)")


@given(text=st.text(), cap=st.integers(1, 50))
def test_truncate_words_keeps_at_most_the_cap(text, cap):
    out = truncate_words(text, cap)
    words = out.split()
    if len(text.split()) > cap:
        assert words[-1] == "..." and len(words) == cap + 1
        assert words[:-1] == text.split()[:cap]
    else:
        assert words == text.split()


def test_search_history_and_qa_pairs():
    history = ({"query": "q1", "documents": (doc("T1"),)}, {"query": "q2", "documents": ()})
    text = render_search_history(history, 10)
    assert "Search 1: q1\n[1] Title: T1" in text
    assert "Search 2: q2\n(no documents were found)" in text
    assert render_search_history(()) == "(no searches yet)"
    pairs = render_qa_pairs([("q1", "a1"), ("q2", "a2")])
    assert (
        pairs
        == "Query 1: q1\nAnswer (from documents): a1\n\nQuery 2: q2\nAnswer (from documents): a2"
    )
    assert render_qa_pairs([]) == "(no searches yet)"


def test_status_note_warns_after_an_unreadable_reply():
    assert status_note("You have 3 steps left.", []) == "You have 3 steps left."
    assert status_note("B.", [{"thought": "x"}]) == "B."
    note = status_note("B.", [{"parse_error": "expected X, got " + "y" * 500}])
    assert note.startswith("B.\nYour previous reply could not be read (expected X")
    assert len(note) < 320


def test_pair_steps_skips_failed_and_unreadable_steps():
    history = (
        {"query": "a", "documents": (doc("A"),)},
        {"query": "c", "documents": (doc("C"),)},
    )
    notes = [
        {"action": "search", "query": "a"},
        {"parse_error": "bad"},
        {"action": "search", "query": "b"},  # retrieval failed: not in the history
        {"action": "search", "query": "c"},
        {"action": "answer", "answer": "x"},
    ]
    entries = [entry["query"] if entry else None for _, entry in pair_steps(notes, history)]
    assert entries == ["a", None, None, "c", None]
    scripted = pair_steps([{"scripted": "search"}], history)
    assert scripted[0][1] is history[0]


def test_trajectory_shows_thoughts_actions_and_observations():
    history = ({"query": "Ed Wood", "documents": (doc("Ed Wood", "Ed Wood was American."),)},)
    notes = [
        {"thought": "Search him.", "action": "search", "query": "Ed Wood"},
        {"thought": "oops", "parse_error": "expected an Action line"},
        {"thought": "again", "action": "search", "query": "nothing"},
    ]
    text = render_trajectory(notes, history, 150)
    assert (
        "Thought 1: Search him.\nAction 1: Search[Ed Wood]\nObservation 1:\n[1] Title: Ed Wood"
        in text
    )
    assert "Action 2: (unreadable)\nObservation 2: Your reply could not be read: expected" in text
    assert "Action 3: Search[nothing]\nObservation 3: (the search returned no documents)" in text
    assert render_trajectory([], ()) == "(none yet)"


def test_documents_excerpt_is_capped():
    docs = [doc("A", "word " * 100), doc("B", "more")]
    text = documents_excerpt(docs, 50)
    assert text.startswith("A: word word") and text.endswith(" ...")
    assert len(text) <= 54
    assert documents_excerpt([doc("A", "short")], 300) == "A: short"
    assert documents_excerpt([], 300) == "(no documents were found)"


def test_excerpt_and_doc_words_validation():
    assert excerpt("abc") == "'abc'"
    assert excerpt("x" * 500, 10) == "'xxxxxxxxxx'... (500 chars)"
    assert check_doc_words(3) == 3
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="doc_words"):
            check_doc_words(bad)
