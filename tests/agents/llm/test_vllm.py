import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest

from raggym.agents.llm.base import LLM, SamplingParams
from raggym.agents.llm.vllm_backend import VLLMLLM

ROOT = Path(__file__).resolve().parents[3]
CONVERSATIONS = [
    [{"role": "user", "content": "Who directed Doctor Strange?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
]


def test_importing_the_module_does_not_import_vllm():
    code = "import sys, raggym.agents.llm.vllm_backend; print('vllm' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_constructing_without_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # absent, even where it is installed
    with pytest.raises(ImportError, match=r"pip install 'raggym\[vllm\]'"):
        VLLMLLM("some/model")


# --- a stand-in vllm module: checks how VLLMLLM drives the engine, without a GPU ---------


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeLoRARequest:
    def __init__(self, lora_name, lora_int_id, lora_path):
        self.args = (lora_name, lora_int_id, lora_path)


class FakeEngine:
    instances: ClassVar[list["FakeEngine"]] = []

    def __init__(self, model, **kwargs):
        self.model, self.kwargs, self.calls = model, kwargs, []
        self.reject = ""
        FakeEngine.instances.append(self)

    def chat(self, messages, sampling_params, use_tqdm, lora_request):
        self.calls.append((messages, sampling_params, use_tqdm, lora_request))
        if self.reject and any(self.reject in m[-1]["content"] for m in messages):
            raise ValueError("The decoder prompt is longer than the maximum model length")
        outputs = []
        for conversation, sp in zip(messages, sampling_params, strict=True):
            words = conversation[-1]["content"].split()
            samples = [
                types.SimpleNamespace(
                    text=f"Search: {words[0]} #{j} END tail",
                    token_ids=list(range(3 + j)),
                    finish_reason="length" if j else "stop",
                )
                for j in range(sp.kwargs["n"])
            ]
            outputs.append(
                types.SimpleNamespace(prompt_token_ids=list(range(len(words))), outputs=samples)
            )
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeEngine
    vllm.SamplingParams = FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    for name, module in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    FakeEngine.instances = []
    return vllm


def test_generate_maps_params_outputs_and_counts(fake_vllm):
    llm = VLLMLLM("org/model", gpu_memory_utilization=0.5)
    assert isinstance(llm, LLM) and llm.name == "org/model"
    engine = FakeEngine.instances[0]
    assert engine.model == "org/model" and engine.kwargs == {"gpu_memory_utilization": 0.5}
    params = SamplingParams(n=2, temperature=0.7, top_p=0.9, max_tokens=5, stop=("END",), seed=3)
    completions = llm.generate(CONVERSATIONS, params)
    assert len(engine.calls) == 1  # one chat call for the whole batch
    messages, sampling, use_tqdm, lora = engine.calls[0]
    assert messages == [[dict(m) for m in c] for c in CONVERSATIONS]
    assert use_tqdm is False and lora is None
    assert [sp.kwargs for sp in sampling] == [
        {"n": 2, "temperature": 0.7, "top_p": 0.9, "max_tokens": 5, "stop": ["END"], "seed": 3},
        {"n": 2, "temperature": 0.7, "top_p": 0.9, "max_tokens": 5, "stop": ["END"], "seed": 4},
    ]
    first = completions[0]
    assert first.texts == ("Search: Who #0 ", "Search: Who #1 ")  # cut at the stop string
    assert first.finish_reasons == ("stop", "stop")
    assert first.prompt_tokens == 4 and first.completion_tokens == 3 + 4
    assert completions[1].prompt_tokens == 3 and completions[1].ok


def test_unseeded_and_stopless_params(fake_vllm):
    llm = VLLMLLM("m")
    completion = llm.generate(CONVERSATIONS[:1], SamplingParams(n=2, max_tokens=9))[0]
    kwargs = FakeEngine.instances[0].calls[0][1][0].kwargs
    assert kwargs["seed"] is None and kwargs["stop"] is None and kwargs["temperature"] == 0.0
    assert completion.texts[0] == "Search: Who #0 END tail"
    assert completion.finish_reasons == ("stop", "length")
    assert llm.generate([], SamplingParams()) == []


def test_adapter_enables_lora_with_a_large_enough_rank(fake_vllm, tmp_path):
    adapter = tmp_path / "my_adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 24}))
    llm = VLLMLLM("m", adapter=adapter)
    engine = FakeEngine.instances[0]
    assert engine.kwargs == {"enable_lora": True, "max_lora_rank": 32}
    assert llm.name == "m+my_adapter"
    llm.generate(CONVERSATIONS[:1], SamplingParams())
    assert engine.calls[0][3].args == ("my_adapter", 1, str(adapter))
    VLLMLLM("m", adapter=adapter, max_lora_rank=64)
    assert FakeEngine.instances[1].kwargs["max_lora_rank"] == 64
    with pytest.raises(FileNotFoundError, match="adapter"):
        VLLMLLM("m", adapter=tmp_path / "missing")


def test_a_rejected_prompt_fails_alone(fake_vllm):
    llm = VLLMLLM("m")
    engine = FakeEngine.instances[0]
    engine.reject = "France"
    completions = llm.generate(CONVERSATIONS, SamplingParams())
    assert len(engine.calls) == 3  # the batch, then each conversation alone
    assert completions[0].ok
    assert not completions[1].ok and completions[1].texts == ()
    assert completions[1].error.startswith("ValueError: The decoder prompt is longer")
    single = llm.generate(CONVERSATIONS[1:], SamplingParams())
    assert len(engine.calls) == 4 and single[0].error.startswith("ValueError")


def _gpu_ready() -> tuple[bool, str]:
    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed (pip install 'raggym[vllm]')"
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "vLLM generation needs a CUDA GPU"
    return True, ""


@pytest.mark.gpu
def test_real_generation_on_gpu(tmp_path):
    ready, reason = _gpu_ready()
    if not ready:
        pytest.skip(reason)
    from raggym.testing.tiny import build_tiny_causal_lm

    # vLLM's attention kernels want a head size of 32 or more.
    path = build_tiny_causal_lm(tmp_path / "lm", hidden_size=128, num_heads=2)
    llm = VLLMLLM(
        str(path), gpu_memory_utilization=0.2, max_model_len=256, enforce_eager=True, seed=0
    )
    params = SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=5)
    first = llm.generate(CONVERSATIONS, params)
    again = llm.generate(CONVERSATIONS, params)
    assert [c.texts for c in first] == [c.texts for c in again]
    for completion in first:
        assert completion.ok and len(completion.texts) == 2
        assert completion.prompt_tokens > 0 and 2 <= completion.completion_tokens <= 16


def test_a_trained_adapter_folder_loads_its_base_with_the_adapter(fake_vllm, tmp_path):
    adapter = tmp_path / "final"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (adapter / "raggym_train.json").write_text(json.dumps({"base_model": "org/base"}))
    llm = VLLMLLM(adapter)
    engine = FakeEngine.instances[0]
    assert engine.model == "org/base" and engine.kwargs["enable_lora"] is True
    assert llm.lora_request.args == ("final", 1, str(adapter))
