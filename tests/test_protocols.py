"""The protocol names shared by agents, collection, trainers and suites."""

import pytest

from raggym_env.protocols import DEFAULT_PROTOCOL, PROTOCOLS, check_protocol


def test_default_is_raggym_and_listed_first() -> None:
    assert DEFAULT_PROTOCOL == "raggym" == PROTOCOLS[0]


@pytest.mark.parametrize("name", ["rag-gym", "RAG-Gym", " rag_gym ", "paper"])
def test_rag_gym_spellings(name: str) -> None:
    assert check_protocol(name) == "rag-gym"


@pytest.mark.parametrize("name", ["", "ragym", None, 3, "rag gym"])
def test_unknown_names_are_refused_with_the_choices(name: object) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        check_protocol(name)
