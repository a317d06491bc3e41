"""The fake OpenAI-compatible server over real HTTP on loopback: replies, validation, faults."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

import httpx

from raggym.testing.fake_server import (
    FakeServerStats,
    Fault,
    FaultPlan,
    create_fake_openai_app,
    default_respond,
)
from raggym_env.retrieval.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[3]
USER = {"role": "user", "content": "Who directed the film Sinister in 2012 exactly?"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [USER], **fields}


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, Any]]:
    """A fake server with the default respond; yields an httpx client on it and the app."""
    app = create_fake_openai_app()
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        yield client, app


def post(client: httpx.Client, payload: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", json=payload)


def test_default_reply_is_an_openai_chat_completion(served: tuple[httpx.Client, Any]):
    client, app = served
    response = post(client, body())
    assert response.status_code == 200
    reply = response.json()
    assert reply["object"] == "chat.completion"
    assert reply["model"] == "fake-model"
    assert reply["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Answer: Who directed the film Sinister"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert reply["usage"] == {"prompt_tokens": 8, "completion_tokens": 6, "total_tokens": 14}
    stats: FakeServerStats = app.state.stats
    assert (stats.requests, stats.completed, stats.rejected) == (1, 1, 0)
    assert stats.bodies[0] == body()


def test_default_respond_uses_the_last_user_message():
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Search: x"},
        {"role": "user", "content": "one two three four five six"},
        {"role": "assistant", "content": "thinking"},
    ]
    assert default_respond(messages, 0) == "Answer: one two three four five"
    assert default_respond([{"role": "system", "content": "s"}], 3) == "Answer:"


def test_n_stop_and_max_tokens_are_honoured():
    replies = ["alpha beta STOP gamma", "one two three four five"]
    app = create_fake_openai_app(lambda messages, i: replies[i % 2])
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        reply = post(client, body(n=3, stop=["STOP"], max_tokens=3)).json()
        single_stop = post(client, body(n=1, stop="beta")).json()
    assert [c["index"] for c in reply["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in reply["choices"]] == [
        "alpha beta ",
        "one two three",
        "alpha beta ",
    ]
    assert [c["finish_reason"] for c in reply["choices"]] == ["stop", "length", "stop"]
    assert reply["usage"]["completion_tokens"] == 2 + 3 + 2
    assert single_stop["choices"][0]["message"]["content"] == "alpha "


def test_respond_receives_the_messages_and_sample_index():
    seen: list[tuple[list[dict[str, Any]], int]] = []

    def respond(messages: list[dict[str, Any]], index: int) -> str:
        seen.append((messages, index))
        return f"sample {index}"

    app = create_fake_openai_app(respond, model="other")
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        reply = post(client, {"messages": [USER], "n": 2}).json()
    assert [c["message"]["content"] for c in reply["choices"]] == ["sample 0", "sample 1"]
    assert seen == [([USER], 0), ([USER], 1)]
    assert reply["model"] == "other"  # no model requested: the served one is echoed


def test_an_exception_in_respond_fails_the_request_and_the_server_keeps_serving():
    def respond(messages: list[dict[str, Any]], index: int) -> str:
        raise RuntimeError("model crashed")

    app = create_fake_openai_app(respond)
    with BackgroundServer(app) as server:
        with httpx.Client(base_url=server.url) as client:
            try:
                status = post(client, body()).status_code
            except httpx.TransportError:
                status = None  # the server closed the connection after its 500
            assert status in (500, None)
        with httpx.Client(base_url=server.url) as client:
            assert post(client, {"model": "m"}).status_code == 400
    assert (app.state.stats.requests, app.state.stats.completed) == (2, 0)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"model": "m"}, "missing required field 'messages'"),
        (body(messages="hi"), "'messages' must be a non-empty list"),
        (body(messages=[]), "'messages' must be a non-empty list"),
        (body(messages=["hi"]), "messages[0] must be an object"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role must be one of"),
        (body(messages=[{"role": "user", "content": 3}]), "messages[0].content must be a string"),
        (body(model=7), "'model' must be a string"),
        (body(n=0), "'n' must be an integer in [1, 128]"),
        (body(n=True), "'n' must be an integer"),
        (body(max_tokens=0), "'max_tokens' must be a positive integer"),
        (body(temperature="hot"), "'temperature' must be a number"),
        (body(stop=[1]), "'stop' must be a string or a list of strings"),
        (body(seed=1.5), "'seed' must be an integer"),
        ([1, 2], "the body must be a JSON object"),
    ],
)
def test_invalid_requests_get_a_400_with_a_message(
    served: tuple[httpx.Client, Any], payload: Any, fragment: str
):
    client, app = served
    response = post(client, payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"
    assert (app.state.stats.rejected, app.state.stats.completed) == (1, 0)


def test_malformed_json_body_gets_a_400(served: tuple[httpx.Client, Any]):
    client, app = served
    response = client.post("/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert "malformed JSON body" in response.json()["error"]["message"]
    assert app.state.stats.bodies == type(app.state.stats.bodies)()


def test_models_and_health(served: tuple[httpx.Client, Any]):
    client, _ = served
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["fake-model"]
    assert client.get("/health").json() == {"status": "ok"}


def test_next_faults_then_normal_replies(served: tuple[httpx.Client, Any]):
    client, app = served
    app.state.faults.next(500, times=2, message="boom").next(429, retry_after=1.5)
    statuses = [post(client, body()) for _ in range(4)]
    assert [r.status_code for r in statuses] == [500, 500, 429, 200]
    assert statuses[0].json()["error"]["message"] == "boom"
    assert "retry-after" not in statuses[0].headers
    assert statuses[2].headers["retry-after"] == "1.5"
    stats = app.state.stats
    assert stats.faults == {"500": 2, "429": 1}
    assert app.state.faults.fired == {"500": 2, "429": 1}
    assert (stats.requests, stats.completed) == (4, 1)


def test_every_nth_request_and_predicate_faults(served: tuple[httpx.Client, Any]):
    client, app = served
    plan: FaultPlan = app.state.faults
    plan.when(lambda b: b["messages"][-1]["content"] == "fail me", 503, times=1)
    plan.every(3, 502)
    doomed = body(messages=[{"role": "user", "content": "fail me"}])
    codes = [post(client, body()).status_code for _ in range(2)]
    codes.append(post(client, doomed).status_code)  # request 3: the predicate rule comes first
    codes += [post(client, body()).status_code for _ in range(3)]  # requests 4, 5, 6
    codes.append(post(client, doomed).status_code)  # request 7: the predicate is used up
    assert codes == [200, 200, 503, 200, 200, 502, 200]
    plan.clear()
    assert [post(client, body()).status_code for _ in range(2)] == [200, 200]  # 9 = 3 x 3


def test_always_fault_and_bad_requests_do_not_consume_faults(served: tuple[httpx.Client, Any]):
    client, app = served
    app.state.faults.next(503)
    assert post(client, {"model": "m"}).status_code == 400  # invalid: not faulted
    assert post(client, body()).status_code == 503
    app.state.faults.always(404, message="no such model")
    assert [post(client, body()).status_code for _ in range(3)] == [404] * 3


def test_malformed_fault_is_a_200_with_invalid_json(served: tuple[httpx.Client, Any]):
    client, app = served
    app.state.faults.next("malformed")
    response = post(client, body())
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert post(client, body()).json()["choices"]


def test_drop_fault_closes_the_connection_without_a_response(served: tuple[httpx.Client, Any]):
    client, app = served
    assert post(client, body()).status_code == 200  # a keep-alive connection first
    app.state.faults.next("drop", times=2)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        post(client, body())
    with httpx.Client(base_url=str(client.base_url)) as fresh:  # and on a new connection
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            post(fresh, body())
        assert post(fresh, body()).status_code == 200
    assert app.state.stats.faults == {"drop": 2}


def test_drop_fault_without_uvicorns_transport_still_breaks_the_reply():
    """When ``send`` is wrapped (no transport to close) the reply is cut after its headers."""
    app = create_fake_openai_app(faults=FaultPlan().always("drop"))

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def relay(message: Any) -> None:
            await send(message)

        await app(scope, receive, relay)

    with (
        BackgroundServer(wrapped) as server,
        httpx.Client(base_url=server.url) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        post(client, body())


def test_slow_fault_times_out_the_client_and_ends_when_it_disconnects(
    served: tuple[httpx.Client, Any],
):
    client, app = served
    app.state.faults.next("slow", delay_s=30)
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=body(), timeout=0.2)
    deadline = time.monotonic() + 5
    while app.state.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.state.stats.in_flight == 0  # the handler noticed the disconnect
    assert time.monotonic() - start < 5
    assert app.state.stats.completed == 0


def test_short_slow_fault_still_answers(served: tuple[httpx.Client, Any]):
    client, app = served
    app.state.faults.next("slow", delay_s=0.15)
    start = time.monotonic()
    response = post(client, body())
    assert response.status_code == 200
    assert time.monotonic() - start >= 0.15
    assert app.state.stats.completed == 1


def test_latency_overlaps_and_max_in_flight_is_recorded():
    app = create_fake_openai_app(latency_s=0.5)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        start = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: post(client, body()).status_code, range(8)))
        elapsed = time.monotonic() - start
    assert codes == [200] * 8
    stats = app.state.stats
    assert stats.max_in_flight == 8  # all eight were held at once: they overlapped
    # In sequence they would take 8 x 0.5 = 4 s; the bound is that, not a speed target, so a
    # busy machine's thread start-up (over 1 s seen in CI) cannot fail it.
    assert elapsed < 8 * 0.5
    assert stats.in_flight == 0
    assert 1 <= len(stats.peers) <= 8
    stats.reset()
    assert (stats.requests, stats.max_in_flight, len(stats.bodies), stats.peers) == (0, 0, 0, set())


def test_headers_are_recorded(served: tuple[httpx.Client, Any]):
    client, app = served
    client.post("/v1/chat/completions", json=body(), headers={"Authorization": "Bearer k"})
    assert app.state.stats.headers[-1]["authorization"] == "Bearer k"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: FaultPlan().next("explode"), "fault kind must be"),
        (lambda: FaultPlan().next(200), "fault kind must be"),
        (lambda: FaultPlan().next(True), "fault kind must be"),
        (lambda: FaultPlan().next(500, times=0), "times must be a positive int"),
        (lambda: FaultPlan().every(0, 500), "n must be a positive int"),
        (lambda: FaultPlan().always(429, retry_after=-1), "retry_after must be >= 0"),
        (lambda: Fault("slow", delay_s=-1), "delay_s must be >= 0"),
        (lambda: create_fake_openai_app(latency_s=-0.1), "latency_s must be"),
        (lambda: create_fake_openai_app(model=""), "model must be"),
    ],
)
def test_bad_fault_and_app_arguments_raise_value_error(call: Any, error: str):
    with pytest.raises(ValueError, match=error):
        call()


def test_bad_argument_types_raise_type_error():
    with pytest.raises(TypeError, match="respond must be callable"):
        create_fake_openai_app("hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="faults must be a FaultPlan"):
        create_fake_openai_app(faults=[500])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="predicate must be callable"):
        FaultPlan().when("x", 500)  # type: ignore[arg-type]


def test_fault_plan_is_thread_safe():
    plan = FaultPlan().next(500, times=50)
    picked: list[Fault | None] = []
    lock = threading.Lock()

    def pick(number: int) -> None:
        fault = plan.pick(number, body())
        with lock:
            picked.append(fault)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(pick, range(1, 201)))
    assert sum(f is not None for f in picked) == 50
    assert plan.fired == {"500": 50}


def test_cli_prints_ready_and_serves_until_killed():
    command = [
        sys.executable,
        "-m",
        "raggym.testing.fake_server",
        "--port",
        "0",
        "--latency-ms",
        "30",
    ]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("READY http://127.0.0.1:"), line
            url = line.split()[1]
            assert url.endswith("/v1")
            start = time.monotonic()
            reply = httpx.post(f"{url}/chat/completions", json=body(), timeout=5).json()
            assert time.monotonic() - start >= 0.03
            assert reply["choices"][0]["message"]["content"].startswith("Answer: Who")
            assert httpx.get(f"{url}/models", timeout=5).json()["data"][0]["id"] == "fake-model"
            assert process.poll() is None  # still serving
        finally:
            process.terminate()
            process.wait(10)


def test_cli_rejects_a_negative_latency():
    result = subprocess.run(
        [sys.executable, "-m", "raggym.testing.fake_server", "--latency-ms", "-5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--latency-ms must be >= 0" in result.stderr
