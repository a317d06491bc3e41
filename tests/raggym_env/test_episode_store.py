from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from raggym_env.episode import (
    SCHEMA_VERSION,
    Candidate,
    EpisodeRecord,
    RetrievedDoc,
    SchemaError,
    StepRecord,
    gold_from_example,
)
from raggym_env.store import (
    EpisodeStore,
    MalformedRecordWarning,
    ReadStats,
    TornLineWarning,
    final_episodes,
    read_episodes,
)
from raggym_env.types import Evidence, QAExample


def make_record(example_id: str = "q1", *, error: str | None = None) -> EpisodeRecord:
    steps = [
        StepRecord(
            index=0,
            action={"type": "search", "text": "Eiffel Tower architect"},
            raw_text="Search: Eiffel Tower architect",
            action_error=None,
            retrieved=[
                RetrievedDoc("d1", "Eiffel Tower", 12.5),
                RetrievedDoc("d7", "Gustave Eiffel", 9.25),
            ],
            reward=0.0,
            evidence_recall=0.5,
            latency_s=0.31,
            tokens={"prompt": 120, "completion": 9},
            candidates=[
                Candidate("Search: Eiffel Tower architect", {"type": "search"}, 0.9, "critic"),
                Candidate("Answer: Paris", {"type": "answer", "text": "Paris"}, 0.1, "critic"),
                Candidate("???", None, None, None, error="unparseable"),
            ],
            extra={"note": "ünïcødé ✓"},
        ),
        StepRecord(index=1, action={"type": "answer", "text": "Gustave Eiffel"}, reward=1.0),
    ]
    return EpisodeRecord(
        env_id="RAGGym/HotpotQA-v0",
        env_version=0,
        example_id=example_id,
        question="Who designed the Eiffel Tower?",
        steps=steps,
        final_answer="Gustave Eiffel",
        gold={"answers": ["Gustave Eiffel"], "answer_letter": None, "evidence_titles": []},
        metrics={"em": 1.0, "f1": 1.0, "evidence_recall": 0.5},
        terminated=True,
        error=error,
        seed=7,
        started_at="2025-01-01T00:00:00+00:00",
        ended_at="2025-01-01T00:00:02+00:00",
    )


# ------------------------------------------------------------------------------------------
# Episode schema
# ------------------------------------------------------------------------------------------


def test_record_round_trip_through_json() -> None:
    record = make_record()
    data = json.loads(json.dumps(record.to_dict()))
    assert data["schema_version"] == SCHEMA_VERSION
    assert EpisodeRecord.from_dict(data) == record


def test_record_properties() -> None:
    record = make_record()
    assert record.num_searches == 1
    assert record.succeeded
    assert record.retrieved_ids == ["d1", "d7"]
    assert record.steps[0].retrieved_ids == ["d1", "d7"]
    assert not make_record(error="RuntimeError: boom").succeeded


def test_summary_and_repr_are_readable() -> None:
    record = make_record()
    text = record.summary()
    assert "Who designed the Eiffel Tower?" in text
    assert "search 'Eiffel Tower architect' -> Eiffel Tower; Gustave Eiffel" in text
    assert "answer: 'Gustave Eiffel'  gold: Gustave Eiffel" in text
    assert "em=1" in text
    assert len(text.splitlines()) <= 8
    assert str(record) == text
    short = repr(record)
    assert "\n" not in short
    assert "example_id='q1'" in short
    failed = make_record(error="TimeoutError: LLM did not answer")
    assert "FAILED (TimeoutError: LLM did not answer)" in failed.summary()


def test_from_dict_tolerates_extra_keys_and_newer_minor() -> None:
    data = make_record().to_dict()
    data["schema_version"] = "1.7"
    data["a_future_field"] = {"x": 1}
    data["steps"][0]["future_step_field"] = 3
    data["steps"][0]["candidates"][0]["future"] = True
    record = EpisodeRecord.from_dict(data)
    assert record.schema_version == "1.7"
    assert record.steps[0].candidates[0].scorer == "critic"


def test_from_dict_rejects_unknown_major() -> None:
    data = make_record().to_dict()
    data["schema_version"] = "2.0"
    with pytest.raises(SchemaError, match=r"schema version '2.0'.*1\.x"):
        EpisodeRecord.from_dict(data)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("example_id"), "missing required field 'example_id'"),
        (lambda d: d.pop("schema_version"), "missing required field 'schema_version'"),
        (lambda d: d.update(env_version="0"), "'env_version': expected an integer"),
        (lambda d: d.update(seed=True), "'seed': expected an integer"),
        (lambda d: d.update(question=None), "'question': expected a string"),
        (lambda d: d.update(metrics={"em": "high"}), "metric 'em'"),
        (lambda d: d["steps"][0]["action"].update(type="jump"), "action type must be one of"),
        (lambda d: d["steps"][0].update(tokens={"prompt": 1.5}), "integer counts"),
        (lambda d: d["steps"][0]["retrieved"][0].pop("id"), "missing required field 'id'"),
        (lambda d: d.update(steps="oops"), "expected an array"),
    ],
)
def test_from_dict_validation_errors(mutate: object, message: str) -> None:
    data = make_record().to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SchemaError, match=message):
        EpisodeRecord.from_dict(data)


def test_step_rejects_unknown_action_type() -> None:
    with pytest.raises(SchemaError, match="action type"):
        StepRecord(index=0, action={"type": "think", "text": "hm"})


def test_gold_from_example() -> None:
    example = QAExample(
        id="m1",
        question="Which drug?",
        answers=("B", "Ibuprofen"),
        options={"A": "Aspirin", "B": "Ibuprofen"},
        answer_letter="B",
        evidence=Evidence(titles=("NSAID",), doc_ids=("d3",)),
    )
    assert gold_from_example(example) == {
        "answers": ["B", "Ibuprofen"],
        "answer_letter": "B",
        "evidence_titles": ["NSAID"],
        "evidence_doc_ids": ["d3"],
    }


# ------------------------------------------------------------------------------------------
# Store
# ------------------------------------------------------------------------------------------


def test_store_round_trip_and_run_card(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "episodes.jsonl"
    card = {"run_id": "abc", "config": {"k": 5}}
    own_card = {"run_id": "mine"}
    with EpisodeStore(path, run_card=card, fsync=False) as store:
        store.append(make_record("q1"))
        store.append(replace(make_record("q2"), run_card=own_card))
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert len(lines) == 3
    records = list(read_episodes(path))
    assert [r.example_id for r in records] == ["q1", "q2"]
    assert records[0].run_card == card
    assert records[1].run_card == own_card
    assert replace(records[0], run_card=None) == make_record("q1")
    assert "ünïcødé ✓" in path.read_text(encoding="utf-8")  # readable, not \u-escaped


def test_store_lone_surrogate_becomes_a_replacement_character(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    record = replace(make_record(), final_answer="bad \ud800 bytes \ud83d\ude00")
    with EpisodeStore(path) as store:
        store.append(record)
    assert "bad \ufffd bytes \U0001f600" in path.read_text(encoding="utf-8")  # strict UTF-8
    assert next(read_episodes(path)).final_answer == "bad \ufffd bytes \U0001f600"


def test_lone_surrogate_escapes_of_older_files_are_read_scrubbed(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    line = json.dumps(replace(make_record(), final_answer="bad \ud800").to_dict())
    assert "\\ud800" in line  # how older versions stored it
    path.write_text(line + "\n", encoding="ascii")
    assert next(read_episodes(path)).final_answer == "bad \ufffd"


def test_store_rejects_non_json_and_closed(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path / "e.jsonl", fsync=False)
    with pytest.raises(TypeError, match="not JSON-serializable"):
        store.append(replace(make_record(), extra={"obj": object()}))
    with pytest.raises(TypeError, match="expected an EpisodeRecord"):
        store.append(make_record().to_dict())  # type: ignore[arg-type]
    store.close()
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.append(make_record())


def test_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    with EpisodeStore(path, fsync=False) as store:
        store.append(make_record("q1"))
        store.append(make_record("q2"))
    full = path.read_bytes()
    torn = json.dumps(make_record("q3").to_dict()).encode()[:57]
    path.write_bytes(full + torn)

    with pytest.warns(TornLineWarning, match=r"e\.jsonl: 1 malformed record skipped \(line 3: "):
        ids = [r.example_id for r in read_episodes(path)]
    assert ids == ["q1", "q2"]

    with EpisodeStore(path, fsync=False) as store:
        store.append(make_record("q4"))
    data = path.read_bytes()
    assert data.startswith(full + torn)  # nothing already written was lost or rewritten
    with pytest.warns(TornLineWarning, match=r"e\.jsonl: 1 malformed record skipped \(line 3: "):
        ids = [r.example_id for r in read_episodes(path)]
    assert ids == ["q1", "q2", "q4"]


def test_torn_line_in_the_middle_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    good = json.dumps(make_record("q1").to_dict())
    path.write_text(f'{good}\n\n{{"schema_ver\n\xff\n{good}\n', encoding="latin-1")
    with pytest.warns(TornLineWarning) as caught:
        records = list(read_episodes(path))
    assert len(records) == 2
    assert len(caught) == 1  # one warning per file, naming every skipped line
    message = str(caught[0].message)
    assert re.search(r"e\.jsonl: 2 malformed records skipped \(line 3: .*; line 4: ", message)


def test_malformed_records_are_skipped_counted_and_warned_once(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    future = make_record("q2").to_dict()
    future["schema_version"] = "2.0"
    lines = [
        json.dumps(make_record("q1").to_dict()),
        "{}",
        json.dumps(future),
        "[1, 2]",
        json.dumps(make_record("q3").to_dict()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats = ReadStats()
    with pytest.warns(MalformedRecordWarning) as caught:
        ids = [r.example_id for r in read_episodes(path, stats=stats)]
    assert ids == ["q1", "q3"]
    assert [line for line, _ in stats.skipped] == [2, 3, 4]
    assert stats.count == 3
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "e.jsonl: 3 malformed records skipped" in message
    assert "line 2: " in message and "'2.0'" in message and "expected an object" in message
    # Resume replays the questions whose records were unreadable; the unchanged file is
    # not warned about again (a run reads it for resume keys and again for its summary).
    with EpisodeStore(path, fsync=False) as store, warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert store.pending(["q1", "q2", "q3"]) == ["q2"]
    assert again == []


def test_stored_nan_metric_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    data = make_record("q1").to_dict()
    data["metrics"] = {"em": float("nan"), "f1": float("inf"), "cover_em": 1.0}
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")  # writes bare NaN / Infinity
    (record,) = read_episodes(path)
    assert record.metrics == {"em": None, "f1": None, "cover_em": 1.0}


def test_resume_keys(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    store = EpisodeStore(path, fsync=False)
    assert list(store.read()) == []
    assert store.done_keys() == set()
    with store:
        store.append(make_record("q1"))
        store.append(make_record("q2", error="ValueError: bad output"))
        store.append(make_record("q3", error="TimeoutError: slow"))
        store.append(make_record("q3"))  # retried later and succeeded
    assert store.done_keys() == {"q1", "q2", "q3"}
    assert store.done_keys(retry_failed=True) == {"q1", "q3"}
    assert store.done_keys(key=lambda r: (r.env_id, r.example_id, r.seed)) == {
        ("RAGGym/HotpotQA-v0", q, 7) for q in ("q1", "q2", "q3")
    }
    ids = ["q0", "q1", "q2", "q3", "q4"]
    assert store.completed(ids) == {"q1", "q2", "q3"}
    assert store.pending(ids) == ["q0", "q4"]
    assert store.pending(ids, retry_failed=True) == ["q0", "q2", "q4"]


def test_final_episodes_counts_each_question_once() -> None:
    records = [
        make_record("q1", error="E: 1"),
        make_record("q2"),
        make_record("q1"),
        make_record("q1", error="E: 2"),  # a later failure does not hide the success
        make_record("q3", error="E: 3"),
        make_record("q3", error="E: 4"),
    ]
    final = final_episodes(records)
    assert [(r.example_id, r.error) for r in final] == [("q1", None), ("q2", None), ("q3", "E: 4")]


def test_concurrent_appends_from_threads(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    n_threads, per_thread = 8, 25
    with EpisodeStore(path, fsync=False) as store:

        def work(t: int) -> None:
            for i in range(per_thread):
                store.append(make_record(f"t{t}-{i}"))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = [r.example_id for r in read_episodes(path)]
    assert sorted(ids) == sorted(f"t{t}-{i}" for t in range(n_threads) for i in range(per_thread))


# Appends ~2 kB records until killed; bounded in count (<= 100 MB) and time (20 s).
_WRITER = """
import sys, time
from raggym_env.episode import EpisodeRecord, StepRecord
from raggym_env.store import EpisodeStore

store = EpisodeStore(sys.argv[1], fsync=False)
step = StepRecord(index=0, action={"type": "answer", "text": "x" * 2000})
stop = time.monotonic() + 20
for i in range(50000):
    store.append(
        EpisodeRecord(env_id="E-v0", env_version=0, example_id=f"q{i}", question="q", steps=[step])
    )
    if time.monotonic() > stop:
        break
    time.sleep(0.0002)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_run_keeps_complete_records(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists() and path.read_bytes().count(b"\n") >= 40:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "writer ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornLineWarning)  # the last line may be torn
        ids = [r.example_id for r in read_episodes(path)]
    assert len(ids) >= 40
    assert ids == [f"q{i}" for i in range(len(ids))]  # every complete record, in order

    with EpisodeStore(path, fsync=False) as store:
        store.append(make_record("after"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornLineWarning)
        assert [r.example_id for r in read_episodes(path)][-1] == "after"
