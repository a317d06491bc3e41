"""Credential redaction: secret-named keys, URL userinfo, bearer tokens, key parameters."""

import time

import pytest

from raggym_env.redaction import MASK, find_secrets, is_secret_name, redact, redact_text
from raggym_env.runcard import make_run_card

SECRET_NAMES = [
    "api_key", "apiKey", "API-KEY", "key", "token", "hf_token", "access_token", "password",
    "passwd", "secret", "client_secret", "Authorization", "X-API-Key", "OPENAI_API_KEY",
    "auth", "credentials", "cookie", "private_key",
]  # fmt: skip
PLAIN_NAMES = [
    "api_key_env", "token_file", "key_path", "max_tokens", "pad_token", "eos_token",
    "tokenizer", "k", "keyword", "headers", "options", "model", "name", "prompt_tokens",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_names_of_where_a_secret_lives_are_not_secret(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("openai:http://u:CANARY@h:8000/v1:m", "openai:http://***@h:8000/v1:m"),
        ("https://CANARY@host/x", "https://***@host/x"),
        ("Authorization: Bearer CANARY.x-y", "Authorization: Bearer ***"),
        ("http://h/v1?a=1&api_key=CANARY&b=2", "http://h/v1?a=1&api_key=***&b=2"),
        ("http://h/?token=CANARY", "http://h/?token=***"),
        ("key sk-CANARYCANARYCANARYCANARY1", "key sk-***"),
        ("hf_CANARYCANARYCANARYCANARYCANARY12", "hf_***"),
        ("openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B", "openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B"),
        ("/data/hf_cache/task-models", "/data/hf_cache/task-models"),
    ],
)  # fmt: skip
def test_redact_text(text, expected):
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # idempotent


def test_redact_walks_mappings_and_lists_and_keeps_env_names():
    config = {
        "llm": {"spec": "openai:http://u:CANARY@h/v1:m", "options": {"api_key": "CANARY"}},
        "options": {"api_key_env": "MY_KEY", "headers": {"Authorization": "Bearer CANARY"}},
        "list": [("http://CANARY@h",), {"token": "CANARY"}],
        "unset": {"api_key": None},
    }
    out = redact(config)
    assert "CANARY" not in repr(out)
    assert out["options"]["api_key_env"] == "MY_KEY"
    assert out["llm"]["options"]["api_key"] == MASK
    assert out["unset"]["api_key"] is None
    assert isinstance(out["list"][0], tuple)
    assert sorted(find_secrets(config)) == [
        "list[0][0]", "list[1].token", "llm.options.api_key", "llm.spec",
        "options.headers.Authorization",
    ]  # fmt: skip
    assert find_secrets(out) == []


def test_run_cards_never_hold_credentials():
    card = make_run_card(
        config={"llm": "openai:http://u:CANARY@h/v1:m", "api_key": "CANARY"},
        extra={"url": "http://h/?key=CANARY"},
    )
    assert "CANARY" not in repr(card)
    same_without_key = make_run_card(config={"llm": "openai:http://u:OTHER@h/v1:m", "api_key": "x"})
    assert card["config"] == same_without_key["config"]


@pytest.mark.parametrize(
    "text",
    ["a" * 1_000_000, "://" * 300_000, "bearer" + " " * 1_000_000, "?key=" * 200_000,
     "http://" + "u" * 1_000_000, "sk-" * 300_000, "Bearer " * 150_000],
)  # fmt: skip
def test_redaction_runs_in_linear_time_on_pathological_text(text):
    tick = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - tick < 2.0


def test_episode_records_store_a_redacted_run_card():
    from raggym_env.episode import EpisodeRecord

    record = EpisodeRecord(
        env_id="RAGGym/HotpotQA-v0", env_version=0, example_id="q", question="?",
        run_card={"config": {"llm": "openai:http://u:CANARY@h/v1:m", "api_key": "CANARY"}},
    )  # fmt: skip
    assert "CANARY" not in repr(record.to_dict())
    assert record.to_dict()["run_card"]["config"]["api_key"] == MASK


def test_fingerprints_hold_no_credentials_and_ignore_which_key_was_used():
    from raggym_env.runcard import run_fingerprint

    def fingerprint(key):
        return run_fingerprint(
            {"retriever_options": {"token": key}}, agent={"name": "react"},
            llm=f"openai:http://u:{key}@h/v1:m", llm_options={"extra_body": {"api_key": key}},
        )  # fmt: skip

    assert "CANARY" not in repr(fingerprint("CANARY"))
    assert fingerprint("CANARY") == fingerprint("OTHER")
