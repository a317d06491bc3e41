"""The model-free backends: replies, samples, stop strings, recorded calls."""

import pytest

from raggym.agents.llm.base import LLM, SamplingParams
from raggym.testing.llms import MockLLM, ScriptedLLM

CONVERSATION = [{"role": "user", "content": "Who wrote Hamlet?"}]


def test_mock_cycles_its_pool_over_samples_and_applies_stop():
    llm = MockLLM(lambda c: ["Answer: a END x", "Answer: b"])
    assert isinstance(llm, LLM)
    (completion,) = llm.generate([CONVERSATION], SamplingParams(n=3, stop=("END",)))
    assert completion.texts == ("Answer: a ", "Answer: b", "Answer: a ")
    assert completion.prompt_tokens == 3 and completion.completion_tokens == 6
    assert llm.calls == [([CONVERSATION], SamplingParams(n=3, stop=("END",)))]


def test_scripted_plays_replies_in_order_one_per_sample():
    llm = ScriptedLLM(["a", "b", "c"])
    first, second = llm.generate([CONVERSATION, CONVERSATION], SamplingParams(n=2))
    assert (first.texts, second.texts) == (("a", "b"), ("c", "a"))
    assert llm.generate([CONVERSATION], SamplingParams())[0].texts == ("b",)
    assert len(llm.calls) == 2


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="non-empty sequence"):
        ScriptedLLM("abc")
    with pytest.raises(TypeError, match="callable"):
        MockLLM("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conversation 0"):
        MockLLM(lambda c: "x").generate(["not messages"], SamplingParams())
    with pytest.raises(TypeError, match="string or strings"):
        MockLLM(lambda c: [1]).generate([CONVERSATION], SamplingParams())
