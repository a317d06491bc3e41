"""RemoteCritic against small real HTTP servers on 127.0.0.1 speaking vLLM's /classify."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from raggym.agents.critics.base import CriticItem
from raggym.agents.critics.remote import RemoteCritic
from raggym.agents.registry import make_critic
from raggym_env import Search

PROMPT = ({"role": "user", "content": "Question: Which river?"},)


def value_of(entry):
    """The deterministic 'logit' the fake server gives one input."""
    if isinstance(entry, list) and entry and isinstance(entry[0], dict):
        entry = entry[-1]["content"]
    if isinstance(entry, list):
        return float(sum(entry) % 97) / 10
    return len(entry) / 10 - 3.0


class Server:
    """A threaded /classify server; ``behave(body, number)`` may return (status, raw body)."""

    def __init__(self, behave=None):
        self.bodies, self.headers, self.behave = [], [], behave
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                outer.bodies.append(body)
                outer.headers.append(dict(self.headers))
                status, reply = 200, None
                if outer.behave is not None:
                    status, reply = outer.behave(body, len(outer.bodies)) or (200, None)
                if reply is None:
                    if self.path != "/classify":
                        status, reply = 404, b'{"error": "no route"}'
                    else:
                        inputs = [body["messages"]] if "messages" in body else body["input"]
                        data = [
                            {"index": i, "label": None, "probs": [value_of(x)], "num_classes": 1}
                            for i, x in enumerate(inputs)
                        ]
                        reply = json.dumps({"object": "list", "data": data[::-1]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def items(*texts):
    return [
        CriticItem(
            observation={"question": "Which river?"}, text=t, action=Search(t), prompt=PROMPT
        )
        for t in texts
    ]


def test_texts_are_batched_and_scores_are_the_raw_logits():
    with Server() as server:
        critic = RemoteCritic(server.url + "/v1", "critic", batch_size=2, backoff_s=0)
        groups = [items("a", "bb", "ccc"), items("dddd")]
        scores = critic.score(groups)
    assert [len(g) for g in scores] == [3, 1]
    flat = [s for g in scores for s in g]
    texts = [b for body in server.bodies for b in body["input"]]
    assert len(server.bodies) == 2 and all(b["use_activation"] is False for b in server.bodies)
    assert sorted(s.score for s in flat) == sorted(value_of(t) for t in texts)
    assert all(s.error is None for s in flat)


def test_rag_gym_messages_go_one_per_request_truncated_from_the_left():
    with Server() as server:
        critic = RemoteCritic(server.url, "critic", input_format="rag-gym", backoff_s=0)
        scores = critic.score([items("Search: x", "Answer: Salzach")])[0]
    assert critic.max_length == 4096 and len(server.bodies) == 2
    body = server.bodies[0]
    assert body["messages"][:-1] == list(PROMPT)
    assert body["messages"][-1]["role"] == "assistant"
    assert (body["truncation_side"], body["truncate_prompt_tokens"]) == ("left", 4096)
    assert body["add_special_tokens"] is False
    assert [s.score for s in scores] == [value_of("Search: x"), value_of("Answer: Salzach")]


def test_with_a_local_tokenizer_token_ids_are_sent(tmp_path):
    pytest.importorskip("transformers")
    from raggym.agents.critics.reward_model import conversation_token_ids, critic_messages
    from raggym.testing.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    with Server() as server:
        critic = RemoteCritic(server.url, "m", tokenizer=tokenizer, input_format="rag-gym")
        batch = items("Search: x", "Answer: y")
        scores = critic.score([batch])[0]
    (body,) = server.bodies
    expected = [conversation_token_ids(tokenizer, critic_messages(i), 4096) for i in batch]
    assert body["input"] == expected and body["add_special_tokens"] is False
    assert [s.score for s in scores] == [value_of(ids) for ids in expected]


def test_transient_failures_are_retried():
    def flaky(body, number):
        return (503, b'{"error": "busy"}') if number % 2 == 1 else None

    with Server(flaky) as server:
        critic = RemoteCritic(server.url, "m", batch_size=1, concurrency=1, backoff_s=0)
        scores = critic.score([items("a", "bb")])[0]
    assert all(s.score is not None for s in scores) and len(server.bodies) == 4


def test_failed_requests_give_none_with_the_error_never_zero():
    def refuse_bad(body, number):
        if any("BAD" in str(x) for x in body["input"]):
            return 400, b'{"error": "input too long"}'
        return None

    with Server(refuse_bad) as server:
        critic = RemoteCritic(server.url, "m", batch_size=1, backoff_s=0)
        good, bad = critic.score([items("fine", "BAD")])[0]
    assert good.score is not None and good.error is None
    assert bad.score is None and "HTTP 400" in bad.error and "input too long" in bad.error
    assert len(server.bodies) == 2  # a 400 is not retried


def test_malformed_replies_and_missing_entries_are_failures():
    def broken(body, number):
        if body["input"][0].endswith("Search: a"):
            return 200, b'{"data": [{"index": 0, "probs": ['
        if body["input"][0].endswith("Search: b"):
            return 200, b'{"data": [{"index": 5, "probs": [1.0]}]}'
        return 200, b'{"data": [{"index": 0, "probs": ["high"]}]}'

    with Server(broken) as server:
        critic = RemoteCritic(server.url, "m", batch_size=1, max_retries=1, backoff_s=0)
        scores = critic.score([items("a", "b", "c")])[0]
    assert all(s.score is None for s in scores)
    assert "not JSON" in scores[0].error
    assert "no score" in scores[1].error
    assert "unreadable" in scores[2].error
    assert len([b for b in server.bodies if b["input"][0].endswith(": a")]) == 2  # retried once


def test_unreachable_server_and_api_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRITIC_KEY", "s3cret-value")
    with Server() as server:
        critic = RemoteCritic(server.url, "m", api_key_env="CRITIC_KEY")
        assert critic.score([items("a")])[0][0].score is not None
    assert server.headers[0]["Authorization"] == "Bearer s3cret-value"
    assert "s3cret" not in repr(critic) and "s3cret" not in json.dumps(vars(critic), default=str)
    dead = RemoteCritic(server.url, "m", max_retries=1, backoff_s=0, timeout_s=2)
    verdict = dead.score([items("a")])[0][0]
    assert verdict.score is None and verdict.error.startswith("RemoteCriticError")
    with pytest.raises(ValueError, match="not set"):
        RemoteCritic(server.url, "m", api_key_env="NO_SUCH_VARIABLE_SET")


def test_registry_spec_and_trained_critic_defaults(tmp_path):
    model_dir = tmp_path / "critic"
    model_dir.mkdir()
    (model_dir / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "b"}))
    (model_dir / "raggym_train.json").write_text(
        json.dumps({"base_model": "b", "max_length": 512, "input_format": "rag-gym"})
    )
    critic = make_critic(f"remote:http://127.0.0.1:8000:{model_dir}")
    assert isinstance(critic, RemoteCritic)
    assert critic.url == "http://127.0.0.1:8000/classify" and critic.model == str(model_dir)
    assert (critic.input_format, critic.max_length) == ("rag-gym", 512)
    with pytest.raises(ValueError, match="credentials"):
        make_critic("remote:http://user:key@127.0.0.1:8000:m")
    with pytest.raises(ValueError, match="remote:URL:MODEL"):
        make_critic("nothing")
