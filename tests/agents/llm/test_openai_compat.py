"""OpenAICompatibleLLM against the fake OpenAI server on loopback: batching, retries, keys."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from raggym.agents.llm.base import LLM, Completion, LLMError, SamplingParams
from raggym.agents.llm.openai_compat import OpenAICompatibleLLM
from raggym.testing.drip_server import DripServer
from raggym.testing.fake_server import (
    FakeOpenAIServer,
    fake_openai_server,
)
from raggym_env.retrieval.server import BackgroundServer

KEY = "sk-test-0123456789abcdef"
GREEDY = SamplingParams()


def conversation(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def echo(messages: list[dict[str, Any]], index: int) -> str:
    return f"{messages[-1]['content']} #{index}"


Fake = FakeOpenAIServer


def serving(respond: Any = echo, **options: Any) -> AbstractContextManager[Fake]:
    return fake_openai_server(respond, **options)


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serving() as server:
        yield server


def make_llm(url: str, **options: Any) -> OpenAICompatibleLLM:
    settings: dict[str, Any] = {
        "model": "fake-model",
        "timeout_s": 5.0,
        "backoff_s": 0.001,
        "max_backoff_s": 0.01,
        "max_retries": 3,
    }
    settings.update(options)
    return OpenAICompatibleLLM(base_url=url, **settings)


@pytest.fixture
def llm(fake: Fake) -> Iterator[OpenAICompatibleLLM]:
    with make_llm(fake.url) as backend:
        yield backend


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------- batches
def test_is_an_llm_with_a_default_name(llm: OpenAICompatibleLLM):
    assert isinstance(llm, LLM)
    assert llm.name == "openai:fake-model"
    assert make_llm("http://x", name="mine").name == "mine"


def test_batch_keeps_order_and_returns_n_samples_with_usage(fake: Fake, llm: OpenAICompatibleLLM):
    questions = [f"question number {i}" for i in range(6)]
    params = SamplingParams(n=3, temperature=0.7, top_p=0.9, max_tokens=20)
    results = llm.generate([conversation(q) for q in questions], params)
    assert len(results) == 6
    for question, result in zip(questions, results, strict=True):
        assert result.ok and result.error is None
        assert result.texts == tuple(f"{question} #{i}" for i in range(3))
        assert result.finish_reasons == ("stop",) * 3
        assert result.prompt_tokens == 2 + 3  # whitespace words of both messages
        assert result.completion_tokens == 3 * 4
        assert result.attempts == 1
        assert result.latency_s > 0
        assert result.extra == {}
    sent = list(fake.stats.bodies)
    assert sorted(b["messages"][-1]["content"] for b in sent) == questions
    assert all(
        b["model"] == "fake-model"
        and (b["n"], b["temperature"], b["top_p"], b["max_tokens"]) == (3, 0.7, 0.9, 20)
        and "stop" not in b
        and "seed" not in b
        for b in sent
    )
    assert sent[0]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_stop_and_seed_are_passed_through(fake: Fake, llm: OpenAICompatibleLLM):
    params = SamplingParams(stop=("#", "never"), seed=1234, max_tokens=2)
    [result] = llm.generate([conversation("alpha beta gamma")], params)
    assert fake.stats.bodies[0]["stop"] == ["#", "never"]
    assert fake.stats.bodies[0]["seed"] == 1234
    assert fake.stats.bodies[0]["max_tokens"] == 2
    assert result.texts == ("alpha beta",)  # cut at "#", then to 2 words by the server
    assert result.finish_reasons == ("length",)


def test_extra_body_is_merged_into_every_request(fake: Fake):
    with make_llm(fake.url, extra_body={"top_k": 5, "repetition_penalty": 1.1}) as backend:
        backend.generate([conversation("a"), conversation("b")], GREEDY)
    assert [(b["top_k"], b["repetition_penalty"]) for b in fake.stats.bodies] == [(5, 1.1)] * 2


def test_empty_batch_sends_nothing(fake: Fake, llm: OpenAICompatibleLLM):
    assert llm.generate([], GREEDY) == []
    assert fake.stats.requests == 0


def test_fewer_choices_than_requested_are_recorded_not_failed():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def one_choice(request: Any) -> JSONResponse:
        choice = {"index": 0, "message": {"role": "assistant", "content": "only"}}
        return JSONResponse({"choices": [choice]})  # no usage, no finish_reason

    app = Starlette(routes=[Route("/v1/chat/completions", one_choice, methods=["POST"])])
    with BackgroundServer(app) as server, make_llm(server.url) as backend:
        [result] = backend.generate([conversation("q")], SamplingParams(n=3))
    assert result.ok
    assert result.texts == ("only",)
    assert result.finish_reasons == (None,)
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0)
    assert result.extra == {"choices_returned": 1}


def test_choices_are_ordered_by_index():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def shuffled(request: Any) -> JSONResponse:
        choices = [
            {"index": i, "message": {"content": f"c{i}"}, "finish_reason": "stop"}
            for i in (2, 0, 1)
        ]
        return JSONResponse({"choices": choices, "usage": {"prompt_tokens": 4}})

    app = Starlette(routes=[Route("/v1/chat/completions", shuffled, methods=["POST"])])
    with BackgroundServer(app) as server, make_llm(server.url) as backend:
        [result] = backend.generate([conversation("q")], SamplingParams(n=3))
    assert result.texts == ("c0", "c1", "c2")
    assert (result.prompt_tokens, result.completion_tokens) == (4, 0)


# ---------------------------------------------------------------------------- concurrency
def test_concurrency_limit_bounds_requests_in_flight():
    with serving(latency_s=0.05) as fake, make_llm(fake.url, concurrency=5) as backend:
        start = time.monotonic()
        results = backend.generate([conversation(f"q{i}") for i in range(20)], GREEDY)
        elapsed = time.monotonic() - start
    assert all(r.ok for r in results)
    assert fake.stats.max_in_flight == 5
    assert elapsed >= 4 * 0.05  # 20 requests, 5 at a time


def test_requests_overlap_and_connections_are_reused():
    with serving(latency_s=0.2) as fake, make_llm(fake.url, concurrency=16) as backend:
        start = time.monotonic()
        first = backend.generate([conversation(f"q{i}") for i in range(16)], GREEDY)
        elapsed = time.monotonic() - start
        second = backend.generate([conversation(f"r{i}") for i in range(16)], GREEDY)
    assert all(r.ok for r in first + second)
    assert fake.stats.max_in_flight == 16  # all sixteen were held at once
    assert elapsed < 16 * 0.2  # the time in sequence; perf/rollout_speed.py measures speed
    assert len(fake.stats.peers) <= 16  # the second batch reused the first one's connections


def test_64_concurrent_requests_are_all_in_flight_at_once():
    """64 requests at 200 ms each overlap; perf/rollout_speed.py measures the throughput."""
    with serving(latency_s=0.2) as fake, make_llm(fake.url, concurrency=64) as backend:
        batch = [conversation(f"q{i}") for i in range(64)]
        backend.generate(batch, GREEDY)  # warm up: connections and clients
        start = time.monotonic()
        results = backend.generate(batch, GREEDY)
        elapsed = time.monotonic() - start
    assert all(r.ok for r in results)
    assert fake.stats.max_in_flight == 64
    assert elapsed < 64 * 0.2  # the time in sequence


def test_threads_calling_generate_share_one_concurrency_bound():
    with serving(latency_s=0.03) as fake, make_llm(fake.url, concurrency=5) as backend:
        outputs: list[list[Completion]] = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            result = backend.generate([conversation(f"w{worker} q{i}") for i in range(6)], GREEDY)
            with lock:
                outputs.append(result)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(outputs) == 4
    assert all(r.ok for batch in outputs for r in batch)
    assert fake.stats.max_in_flight == 5
    assert fake.stats.requests == 24


# ---------------------------------------------------------------------------- retries
@pytest.mark.parametrize(
    ("fault", "options", "first_error"),
    [
        (500, {}, "HTTPStatusError: 500 Internal Server Error: injected fault"),
        (503, {"retry_after": 0}, "HTTPStatusError: 503 Service Unavailable"),
        (429, {"retry_after": 0}, "HTTPStatusError: 429 Too Many Requests"),
        ("malformed", {}, "MalformedResponse: HTTP 200 body is not JSON"),
        ("drop", {}, "RemoteProtocolError: Server disconnected without sending a response"),
        ("slow", {"delay_s": 10}, "ReadTimeout"),
    ],
)
def test_transient_failures_are_retried_until_success(
    fake: Fake, fault: Any, options: dict[str, Any], first_error: str
):
    fake.faults.next(fault, times=2, **options)
    with make_llm(fake.url, timeout_s=0.3) as backend:
        [result] = backend.generate([conversation("hello there")], GREEDY)
    assert result.ok, result.error
    assert result.texts == ("hello there #0",)
    assert result.attempts == 3
    assert fake.stats.requests == 3
    assert len(result.extra["retried_errors"]) == 2
    assert result.extra["retried_errors"][0].startswith(first_error)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (500, "HTTPStatusError: 500 Internal Server Error: injected fault"),
        ("drop", "RemoteProtocolError: "),
        ("malformed", "MalformedResponse: "),
        ("slow", "ReadTimeout: "),
    ],
)
def test_giving_up_records_the_error_and_spares_the_rest_of_the_batch(
    fake: Fake, fault: Any, expected: str
):
    fake.faults.when(lambda body: body["messages"][-1]["content"] == "doomed", fault)
    texts = ["fine one", "doomed", "fine two"]
    with make_llm(fake.url, max_retries=2, timeout_s=0.3) as backend:
        results = backend.generate([conversation(t) for t in texts], GREEDY)
    good, bad, other = results
    assert good.texts == ("fine one #0",) and other.texts == ("fine two #0",)
    assert good.attempts == other.attempts == 1
    assert not bad.ok
    assert bad.texts == ()
    assert bad.error is not None and bad.error.startswith(expected), bad.error
    assert bad.error.endswith("(gave up after 3 attempt(s))")
    assert bad.attempts == 3
    assert bad.latency_s > 0
    assert fake.stats.requests == 2 + 3
    with pytest.raises(LLMError, match="gave up"):
        _ = bad.text


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(fake: Fake, llm: OpenAICompatibleLLM, status: int):
    fake.faults.always(status, message="the model `nope` does not exist")
    [result] = llm.generate([conversation("q")], GREEDY)
    assert result.attempts == 1
    assert fake.stats.requests == 1
    assert result.error is not None
    assert result.error.startswith(f"HTTPStatusError: {status} ")
    assert result.error.endswith("the model `nope` does not exist")
    assert result.extra == {"http_status": status}


def test_long_server_messages_are_truncated(fake: Fake, llm: OpenAICompatibleLLM):
    fake.faults.always(400, message="x" * 5000)
    [result] = llm.generate([conversation("q")], GREEDY)
    assert result.error is not None
    assert len(result.error) < 400
    assert result.error.endswith("...")


def test_retry_after_is_honoured_and_capped(fake: Fake):
    fake.faults.next(429, retry_after=0.3)
    with make_llm(fake.url, max_backoff_s=1.0) as backend:
        [result] = backend.generate([conversation("q")], GREEDY)
    assert result.ok and result.attempts == 2
    assert result.latency_s >= 0.3
    fake.faults.next(503, retry_after=3600)
    with make_llm(fake.url, max_backoff_s=0.05) as backend:
        start = time.monotonic()
        [result] = backend.generate([conversation("q")], GREEDY)
    assert result.ok and result.attempts == 2
    assert time.monotonic() - start < 2


def test_unreachable_server_records_a_connect_error():
    with make_llm(f"http://127.0.0.1:{free_port()}", max_retries=1) as backend:
        [result] = backend.generate([conversation("q")], GREEDY)
    assert result.error is not None
    assert result.error.startswith("ConnectError: ")
    assert result.attempts == 2


@pytest.mark.parametrize(("options", "deadline"), [({"deadline_s": 0.6}, 0.6), ({}, 1.0)])
def test_a_server_dripping_its_reply_is_cut_off_at_the_deadline(
    options: dict[str, float], deadline: float
):
    reply = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}]}'
    # ~170 bytes at one per 0.2 s would take 34 s; every read returns well within timeout_s.
    with (
        DripServer(reply, interval_s=0.2) as server,
        make_llm(server.url, timeout_s=0.5, max_retries=1, **options) as backend,
    ):
        start = time.monotonic()
        [result] = backend.generate([conversation("q")], GREEDY)
        elapsed = time.monotonic() - start
    assert backend.deadline_s == deadline
    assert result.error is not None
    assert result.error.startswith(
        f"DeadlineExceeded: no complete reply within deadline_s={deadline}"
    )
    assert "gave up after 2 attempt(s)" in result.error
    assert result.attempts == 2 and server.requests == 2
    assert 2 * deadline - 0.1 < elapsed < 2 * deadline + 0.5, elapsed


def test_backoff_is_exponential_jittered_and_capped():
    backend = make_llm("http://127.0.0.1:1", backoff_s=0.1, max_backoff_s=0.5)
    for retry in range(8):
        for _ in range(20):
            delay = backend._delay(retry)
            assert min(0.5, 0.1 * 2**retry * 0.5) <= delay <= min(0.5, 0.1 * 2**retry * 1.5)
    assert len({backend._delay(1) for _ in range(20)}) > 1  # jittered
    assert backend._delay(0, retry_after=0.25) == 0.25
    assert backend._delay(0, retry_after=99.0) == 0.5
    backend.close()


# ---------------------------------------------------------------------------- API keys
def test_api_key_is_sent_as_bearer_and_never_shown(fake: Fake, caplog: pytest.LogCaptureFixture):
    fake.faults.next(500, message=f"temporarily down for key {KEY}")
    fake.faults.always(401, message=f"Incorrect API key provided: {KEY}")
    with caplog.at_level(logging.DEBUG), make_llm(fake.url, api_key=KEY) as backend:
        [result] = backend.generate([conversation("q")], GREEDY)
        shown = [repr(backend), str(backend), repr(vars(backend))]
    assert [h["authorization"] for h in fake.stats.headers] == [f"Bearer {KEY}"] * 2
    assert result.error is not None and "401" in result.error
    assert result.error.endswith("Incorrect API key provided: ***")
    assert "api_key='***'" in shown[0]
    texts = [*shown, result.error, repr(result), *(r.getMessage() for r in caplog.records)]
    assert any("temporarily down for key ***" in r.getMessage() for r in caplog.records)
    assert not [text for text in texts if KEY in text]


def test_api_key_is_read_from_the_named_environment_variable(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RAGGYM_TEST_KEY", KEY)
    with make_llm(fake.url, api_key_env="RAGGYM_TEST_KEY") as backend:
        monkeypatch.delenv("RAGGYM_TEST_KEY")  # read at construction, not per request
        [result] = backend.generate([conversation("q")], GREEDY)
    assert result.ok
    assert fake.stats.headers[0]["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(backend)


def test_no_key_sends_no_authorization_header(fake: Fake, llm: OpenAICompatibleLLM):
    llm.generate([conversation("q")], GREEDY)
    assert "authorization" not in fake.stats.headers[0]
    assert "api_key=None" in repr(llm)


def test_missing_environment_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RAGGYM_UNSET_KEY", raising=False)
    with pytest.raises(ValueError, match="environment variable RAGGYM_UNSET_KEY is not set"):
        make_llm("http://127.0.0.1:1", api_key_env="RAGGYM_UNSET_KEY")
    monkeypatch.setenv("RAGGYM_UNSET_KEY", "  ")
    with pytest.raises(ValueError, match="RAGGYM_UNSET_KEY"):
        make_llm("http://127.0.0.1:1", api_key_env="RAGGYM_UNSET_KEY")


# ---------------------------------------------------------------------------- event loops
def test_generate_works_inside_a_running_event_loop(fake: Fake, llm: OpenAICompatibleLLM):
    async def notebook_cell() -> list[Completion]:
        return llm.generate([conversation("from a loop")], GREEDY)

    [result] = asyncio.run(notebook_cell())
    assert result.texts == ("from a loop #0",)


def test_agenerate_runs_on_the_callers_loop(fake: Fake):
    backend = make_llm(fake.url, concurrency=4)

    async def main(tag: str) -> list[Completion]:
        async with backend:
            return await backend.agenerate([conversation(f"{tag} {i}") for i in range(6)], GREEDY)

    first = asyncio.run(main("a"))
    second = asyncio.run(main("b"))  # a new loop gets a new client
    assert [r.texts[0] for r in first] == [f"a {i} #0" for i in range(6)]
    assert [r.texts[0] for r in second] == [f"b {i} #0" for i in range(6)]
    assert fake.stats.max_in_flight <= 4
    assert not [t for t in threading.enumerate() if t.name.startswith("raggym-llm-")]
    backend.close()


def test_close_stops_the_worker_thread_and_a_later_call_restarts_it(fake: Fake):
    backend = make_llm(fake.url, name="closing-test")
    backend.generate([conversation("q")], GREEDY)

    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "raggym-llm-closing-test"]

    assert len(workers()) == 1
    backend.close()
    assert workers() == []
    backend.close()  # idempotent
    [result] = backend.generate([conversation("again")], GREEDY)
    assert result.texts == ("again #0",)
    backend.close()
    assert workers() == []


def test_a_garbage_collected_llm_stops_its_worker_thread(fake: Fake):
    backend = make_llm(fake.url, name="collected-test")
    assert backend.generate([conversation("q")], GREEDY)[0].ok
    thread = next(t for t in threading.enumerate() if t.name == "raggym-llm-collected-test")
    del backend
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8000/",
        "http://127.0.0.1:8000/v1",
        "http://127.0.0.1:8000/v1/",
        "http://127.0.0.1:8000/v1/chat/completions",
    ],
)
def test_base_url_is_normalised_to_end_in_v1(base_url: str):
    assert make_llm(base_url).base_url == "http://127.0.0.1:8000/v1"


def test_base_url_without_v1_reaches_the_server(fake: Fake):
    root = fake.url.removesuffix("/v1")
    for url in (root, f"{root}/v1/", f"{root}/v1/chat/completions"):
        with make_llm(url) as backend:
            assert backend.generate([conversation("q")], GREEDY)[0].ok
    assert fake.stats.requests == 3


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"base_url": "127.0.0.1:8000"}, "base_url"),
        ({"base_url": "ftp://host/v1"}, "base_url"),
        ({"base_url": ""}, "base_url"),
        ({"base_url": "http://host/v1?x=1"}, "base_url"),
        ({"model": ""}, "model"),
        ({"model": None}, "model"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 2.5}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"deadline_s": 0}, "deadline_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.0}, "max_retries"),
        ({"backoff_s": -0.1}, "backoff_s"),
        ({"max_backoff_s": float("nan")}, "max_backoff_s"),
        ({"name": ""}, "name"),
        ({"api_key": ""}, "api_key"),
        ({"api_key": "k", "api_key_env": "K"}, "api_key or api_key_env"),
        ({"api_key_env": ""}, "api_key_env"),
        ({"extra_body": ["top_k"]}, "extra_body"),
        ({"extra_body": {"n": 2}}, "extra_body may not set 'n'"),
        ({"extra_body": {"model": "x"}}, "extra_body may not set 'model'"),
        ({"extra_body": {1: 2}}, "extra_body keys"),
        ({"extra_body": {"x": object()}}, "extra_body must be JSON-serialisable"),
    ],
)
def test_bad_constructor_arguments_raise_value_error_naming_them(
    options: dict[str, Any], argument: str
):
    settings: dict[str, Any] = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **options}
    with pytest.raises(ValueError, match=argument):
        OpenAICompatibleLLM(**settings)


def test_base_url_credentials_are_masked_in_errors_and_repr():
    with pytest.raises(ValueError) as info:
        OpenAICompatibleLLM(base_url="ftp://user:hunter2@host/v1", model="m")
    assert "hunter2" not in str(info.value)
    backend = OpenAICompatibleLLM(base_url="http://user:hunter2@host:1", model="m")
    assert "hunter2" not in repr(backend)
    assert backend.base_url == "http://host:1/v1" and "api_key='***'" in repr(backend)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("http://user:hunter2@127.0.0.1:1/v1", "hunter2"),
        ("http://hunter2@127.0.0.1:1", "hunter2"),
        ("http://user:p%40ss%3Aw@127.0.0.1:1/v1", "p@ss:w"),
        ("http://user:a:b:c@127.0.0.1:1/v1", "a:b:c"),
    ],
)
def test_base_url_credentials_become_the_bearer_key(url: str, key: str):
    backend = OpenAICompatibleLLM(base_url=url, model="m")
    assert backend.base_url.startswith("http://127.0.0.1:1")
    assert backend._secret is not None and backend._secret.reveal() == key
    with pytest.raises(ValueError, match="pass the key once"):
        OpenAICompatibleLLM(base_url=url, model="m", api_key="other")


def test_base_url_credentials_reach_the_server_as_bearer_not_basic():
    with fake_openai_server(lambda messages, i: "Answer: x") as server:
        url = server.url.replace("http://", "http://user:s3cr3t-KEY@")
        with OpenAICompatibleLLM(base_url=url, model="m", max_retries=0) as backend:
            (completion,) = backend.generate([conversation("q")], GREEDY)
        assert completion.error is None
        assert server.stats.headers[-1]["authorization"] == "Bearer s3cr3t-KEY"


def test_bad_batches_raise_at_once(fake: Fake, llm: OpenAICompatibleLLM):
    with pytest.raises(ValueError, match="conversation 1"):
        llm.generate([conversation("ok"), [{"role": "robot", "content": "x"}]], GREEDY)
    with pytest.raises(ValueError, match="conversations must be a list"):
        llm.generate("just a string", GREEDY)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="params must be SamplingParams"):
        llm.generate([conversation("q")], {"n": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conversation 0"):
        asyncio.run(llm.agenerate([[]], GREEDY))
    assert fake.stats.requests == 0


def test_a_prompt_with_lone_surrogates_is_sent_as_utf8(fake: Fake, llm: OpenAICompatibleLLM):
    (completion,) = llm.generate([conversation("reply \ud800 then \ud83d\ude00")], GREEDY)
    assert completion.error is None
    assert completion.texts == ("reply \ufffd then \U0001f600 #0",)  # echoed by the server


def test_a_reply_with_lone_surrogates_becomes_valid_text():
    """A server may escape a lone surrogate in its JSON; the text that comes back is valid."""
    reply = "Answer: Paris \ud800\udfff \udc00 caf\u00e9"
    with serving(lambda messages, i: reply) as server, make_llm(server.url) as backend:
        (completion,) = backend.generate([conversation("q")], GREEDY)
    assert completion.error is None
    assert completion.texts == ("Answer: Paris \U000103ff \ufffd caf\u00e9",)
    completion.texts[0].encode("utf-8")  # strict: no surrogate survives
