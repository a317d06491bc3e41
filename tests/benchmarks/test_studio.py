"""The annotation studio: schema and store, agreement by hand, export, the app's API and safeguards.

The browser test (headless Chromium) is in ``test_studio_browser.py``.
"""

import dataclasses
import json
import time

import pytest

from raggym.agents.critic_guided import CriticGuidedAgent
from raggym.agents.critics.gold import GoldEvidenceCritic
from raggym.agents.react import ReActAgent
from raggym.agents.rollout import rollout
from raggym.benchmarks.studio import Studio, agreement, cohen_kappa, create_app, pairwise_counts
from raggym.benchmarks.studio.ask import Asker
from raggym.benchmarks.studio.cli import _agree, _export
from raggym.testing import make_tiny_env
from raggym.testing.llms import MockLLM, ScriptedLLM
from raggym.trainers.annotations import annotation_rows
from raggym_env.annotations import (
    Annotation,
    AnnotationStore,
    episode_key,
    human_scored,
    latest_annotations,
    read_annotations,
)
from raggym_env.episode import SchemaError
from raggym_env.store import EpisodeStore, ReadStats

pytest.importorskip("starlette")
from starlette.testclient import TestClient

HOSTILE = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"


def sampling_actor():
    """A mock ReAct policy sampling three different actions per step."""

    def samples(conversation):
        text = conversation[-1]["content"]
        if "(none yet)" in text:
            return [
                "Thought: look up the director.\nAction: Search[Scott Derrickson]",
                "Thought: search anything.\nAction: Search[zzqx unrelated words]",
                "Thought: guess.\nAction: Finish[maybe]",
            ]
        return [
            "Thought: both are American.\nAction: Finish[yes]",
            "Thought: guess.\nAction: Finish[maybe]",
            "Thought: more.\nAction: Search[zzqx unrelated words]",
        ]

    return ReActAgent(MockLLM(samples), doc_words=20)


def build_episodes(path, hostile=False):
    """Two sampled (critic-guided) episodes and one plain one, written to ``path``."""
    env = make_tiny_env(max_steps=3)
    guided = CriticGuidedAgent(sampling_actor(), GoldEvidenceCritic(env.retriever, k=2), n=3)
    records = rollout(env, guided, env.examples[:2], show_progress=False)
    replies = ["Thought: t.\nAction: Search[Eiffel Tower]", "Action: Finish[France]"]
    plain = rollout(env, ReActAgent(ScriptedLLM(replies)), env.examples[1:2], show_progress=False)
    records = records + plain
    if hostile:
        records[0] = dataclasses.replace(records[0], question="Safe? " + HOSTILE)
    with EpisodeStore(path, fsync=False) as store:
        for record in records:
            store.append(record)
    return records


@pytest.fixture
def episodes(tmp_path):
    path = tmp_path / "episodes.jsonl"
    return path, build_episodes(path)


def rank(who, record, step, order, note=None):
    return Annotation(
        who, episode_key(record), record.example_id, step, "rank", order=order, note=note
    )


def mark(who, record, step, candidate, label):
    return Annotation(
        who, episode_key(record), record.example_id, step, "mark", candidate=candidate, label=label
    )


# ---- schema and store -------------------------------------------------------------------------


def test_annotation_round_trips_and_rejects_bad_input(tmp_path, episodes):
    _, records = episodes
    item = rank("ann", records[0], 0, (2, 0, 1), note="first is best")
    assert Annotation.from_dict(json.loads(json.dumps(item.to_dict()))) == item
    for bad in (
        {**item.to_dict(), "order": [0, 0, 1]},
        {**item.to_dict(), "kind": "grade"},
        {**item.to_dict(), "annotator": "  "},
        {**item.to_dict(), "step": True},
        {**mark("ann", records[0], 0, 1, "good").to_dict(), "label": "meh"},
        [1, 2],
    ):
        with pytest.raises(SchemaError):
            Annotation.from_dict(bad)
    assert item.fits(records[0])
    assert not rank("ann", records[0], 0, (1, 0)).fits(records[0])  # three candidates there
    assert not mark("ann", records[0], 9, None, "bad").fits(records[0])


def test_store_appends_survive_a_torn_tail_and_later_judgements_win(tmp_path, episodes):
    _, records = episodes
    path = tmp_path / "ann.jsonl"
    with AnnotationStore(path, fsync=False) as store:
        store.append(mark("ann", records[0], 0, 1, "good"))
    with path.open("ab") as handle:
        handle.write(b'{"annotator": "torn", "epis')  # a crash mid-line
    with AnnotationStore(path, fsync=False) as store:
        written = store.append(mark("ann", records[0], 0, 1, "bad"))
    assert written.created_at
    stats = ReadStats()
    items = list(read_annotations(path, stats=stats))
    assert [i.label for i in items] == ["good", "bad"] and stats.count == 1
    assert [i.label for i in latest_annotations(items)] == ["bad"]
    assert list(read_annotations(tmp_path / "none.jsonl")) == []


# ---- agreement, by hand -------------------------------------------------------------------------


def test_kappa_and_pairwise_accuracy_on_a_hand_built_case(episodes):
    # A: g g b b, B: g b b b -> p_o = 3/4, p_e = .5*.25 + .5*.75 = .5, kappa = .5
    assert cohen_kappa(list("ggbb"), list("gbbb")) == pytest.approx(0.5)
    assert cohen_kappa(list("gg"), list("gg")) is None  # chance agreement 1: undefined
    assert cohen_kappa(list("gb"), list("bg")) == pytest.approx(-1.0)
    # 0>1>2 against 0>2>1: pairs (0,1) and (0,2) agree, (1,2) does not; ties are skipped.
    assert pairwise_counts({0: 3, 1: 2, 2: 1}, {0: 3, 1: 1, 2: 2}) == (2, 3)
    assert pairwise_counts({0: 1, 1: 1}, {0: 2, 1: 1}) == (0, 0)

    _, records = episodes
    r0, r1 = records[0], records[1]
    items = [
        rank("ann", r0, 0, (0, 1, 2)),
        rank("bob", r0, 0, (0, 2, 1)),
        mark("ann", r1, 0, 0, "good"),
        mark("ann", r1, 0, 1, "good"),
        mark("ann", r1, 0, 2, "bad"),
        mark("ann", records[2], 0, None, "bad"),
        mark("bob", r1, 0, 0, "good"),
        mark("bob", r1, 0, 1, "bad"),
        mark("bob", r1, 0, 2, "bad"),
        mark("bob", records[2], 0, None, "bad"),
    ]
    report = agreement(records, items)
    people = report.between_people[0]
    assert (people.a, people.b) == ("ann", "bob")
    # rankings: 2 of 3 pairs at r0; marks at r1 give ann {0:1,1:1,2:0}, bob {0:1,1:0,2:0}:
    # comparable pairs (0,2) only (ann ties 0,1; bob ties 1,2) -> agree. Total 3 of 4.
    assert people.accuracy == pytest.approx(3 / 4) and people.pairs == 4 and people.steps == 2
    assert people.kappa == pytest.approx(0.5) and people.items == 4
    assert report.annotators == {
        "ann": {"rankings": 1, "marks": 4},
        "bob": {"rankings": 1, "marks": 4},
    }
    # the gold-evidence critic scored r0's first step .5, 0, 0 (it ties 1 and 2) and every
    # candidate of r1's first step 0: ann's ranking 0>1>2 orders its two comparable pairs alike
    scorer = {(row.a, row.b): row for row in report.with_scorers}
    assert [c.score for c in r0.steps[0].candidates] == [0.5, 0.0, 0.0]
    with_gold = scorer[("ann", "gold_evidence")]
    assert (with_gold.accuracy, with_gold.pairs, with_gold.steps) == (1.0, 2, 1)
    assert "between annotators" in report.to_text()


# ---- export through the converters ------------------------------------------------------------


def test_human_scores_feed_the_dpo_sft_and_critic_converters(episodes):
    _, records = episodes
    r0 = records[0]
    items = [
        rank("ann", r0, 0, (1, 0, 2)),
        mark("bob", r0, 0, 2, "good"),
        mark("bob", r0, 0, 0, "bad"),
    ]
    scored = human_scored(records, items, "ann")
    assert len(scored) == 1
    step = scored[0].steps[0]
    assert [c.score for c in step.candidates] == [2.0, 3.0, 1.0]
    assert {c.scorer for c in step.candidates} == {"human:ann"} and step.extra["chosen"] == 1
    assert all(not s.candidates for s in scored[0].steps[1:])  # unjudged: no machine score

    dpo = annotation_rows(records, items, "dpo")
    mine = [r for r in dpo if r["meta"]["annotator"] == "ann"]
    assert len(mine) == 2  # candidate 1 against 0 and against 2
    assert all(r["chosen"][0]["content"] == r0.steps[0].candidates[1].text for r in mine)
    assert {r["rejected"][0]["content"] for r in mine} == {
        r0.steps[0].candidates[0].text,
        r0.steps[0].candidates[2].text,
    }
    assert all(r["prompt"] and r["meta"]["scorer"] == "human:ann" for r in mine)
    # bob marked two of three: the third, unmarked, makes the step incomplete -> no rows
    assert not [r for r in dpo if r["meta"]["annotator"] == "bob"]

    sft = annotation_rows(records, items, "sft", annotators=["ann"])
    assert len(sft) == 1 and sft[0]["completion"][0]["content"] == r0.steps[0].candidates[1].text
    critic = annotation_rows(
        records, items, "critic", annotators=["ann"], corpus=make_tiny_env().corpus
    )
    assert len(critic) == 2 and all("Question:" in r["chosen"] for r in critic)
    with pytest.raises(ValueError, match="unknown export format"):
        annotation_rows(records, items, "ppo")


def test_sft_export_keeps_episodes_of_one_question_apart(episodes):
    """Two episodes of one question: a step marked bad in one leaves the other's row alone."""
    _, records = episodes
    guided, plain = records[1], records[2]
    assert guided.example_id == plain.example_id and episode_key(guided) != episode_key(plain)
    items = [mark("ann", guided, 0, None, "bad"), mark("ann", plain, 0, None, "good")]
    sft = annotation_rows(records, items, "sft")
    assert [(r["meta"]["agent"], r["meta"]["step"]) for r in sft] == [(plain.extra.get("agent"), 0)]
    assert sft[0]["completion"][0]["content"] == plain.steps[0].raw_text
    # The other way round: only the guided episode's step is exported.
    items = [mark("ann", guided, 0, None, "good"), mark("ann", plain, 0, None, "bad")]
    [row] = annotation_rows(records, items, "sft")
    assert row["meta"]["agent"] == guided.extra.get("agent")


def test_cli_agree_and_export(tmp_path, episodes, capsys):
    import argparse

    path, records = episodes
    ann = tmp_path / "ann.jsonl"
    with AnnotationStore(ann, fsync=False) as store:
        store.append(rank("ann", records[0], 0, (0, 1, 2)))
        store.append(rank("bob", records[0], 0, (0, 2, 1)))
    args = argparse.Namespace(episodes=[path], annotations=ann, json=True)
    assert _agree(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["between_people"][0]["accuracy"] == pytest.approx(2 / 3)
    out = tmp_path / "rows" / "dpo.jsonl"
    args = argparse.Namespace(episodes=[path], annotations=ann, format="dpo", out=out)
    assert _export(args, exporter=annotation_rows) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and "wrote 4 dpo rows" in capsys.readouterr().out
    missing = argparse.Namespace(episodes=[tmp_path / "nope.jsonl"], annotations=ann, json=False)
    with pytest.raises(FileNotFoundError):
        _agree(missing)


# ---- the app's API ----------------------------------------------------------------------------


def ask_llm():
    return ScriptedLLM(
        [
            "Thought: find it.\nAction: Search[Eiffel Tower]",
            "Thought: Paris.\nAction: Finish[France]",
        ]
    )


def make_studio(tmp_path, episodes_path, **kwargs):
    asker = Asker(
        ["tiny"],
        ["react"],
        ["scripted"],
        lambda task: make_tiny_env(max_steps=3),
        lambda agent, llm: ReActAgent(ask_llm()),
    )
    kwargs.setdefault("asker", asker)
    return Studio(
        [episodes_path],
        tmp_path / "ann.jsonl",
        documents=make_tiny_env().corpus,
        exporter=annotation_rows,
        ask_out=tmp_path / "asked.jsonl",
        **kwargs,
    )


def client_for(studio):
    return TestClient(create_app(studio), base_url="http://127.0.0.1")


def test_api_annotates_reads_back_agrees_and_exports(tmp_path, episodes):
    path, records = episodes
    client = client_for(make_studio(tmp_path, path))
    files = client.get("/api/files").json()
    assert files == [{"index": 0, "name": "episodes.jsonl", "episodes": 3, "skipped": ""}]
    listed = client.get("/api/files/0/episodes").json()
    assert [e["sampled"] > 0 for e in listed] == [True, True, False]
    one = client.get("/api/files/0/episodes/0").json()
    assert one["key"] == episode_key(records[0]) and "run_card" not in one["record"]
    retrieved = records[0].steps[0].retrieved
    assert retrieved and one["texts"][retrieved[0].id]

    posted = client.post(
        "/api/annotations",
        json={
            "annotator": "ann",
            "file": 0,
            "episode": 0,
            "step": 0,
            "kind": "rank",
            "order": [1, 0, 2],
        },
    )
    assert posted.status_code == 201, posted.text
    client.post(
        "/api/annotations",
        json={"annotator": "ann", "file": 0, "episode": 2, "step": 0, "kind": "mark",
              "candidate": None, "label": "good", "note": "fine search"},
    )  # fmt: skip
    seen = client.get("/api/annotations", params={"episode": one["key"]}).json()
    assert [a["order"] for a in seen] == [[1, 0, 2]]
    dpo = client.get("/api/export", params={"format": "dpo"}).json()
    assert dpo["count"] == 2 and dpo["rows"][0]["meta"]["annotator"] == "ann"
    download = client.get("/api/export", params={"format": "sft", "download": "1"})
    assert download.headers["content-disposition"].startswith("attachment")
    report = client.get("/api/agreement").json()
    assert report["annotators"]["ann"] == {"rankings": 1, "marks": 1}
    assert report["with_scorers"] and report["with_scorers"][0]["b"] == "gold_evidence"


MARK = {"annotator": "a", "file": 0, "episode": 0, "step": 0, "kind": "mark", "label": "good"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**MARK, "file": 5}, 404),
        ({**MARK, "kind": "rank", "order": [0, 1]}, 400),
        ({**MARK, "annotator": ""}, 400),
        ({**MARK, "label": "ok"}, 400),
        ({**MARK, "file": "0"}, 400),
        ({**MARK, "note": "x" * 5000}, 400),
        ({**MARK, "step": 7}, 400),
    ],
)
def test_api_refuses_bad_annotations(tmp_path, episodes, body, status):
    client = client_for(make_studio(tmp_path, episodes[0]))
    response = client.post("/api/annotations", json=body)
    assert response.status_code == status and response.json()["error"]
    assert not (tmp_path / "ann.jsonl").exists()


def test_safeguards_size_type_origin_host_and_paths(tmp_path, episodes):
    studio = make_studio(tmp_path, episodes[0])
    client = client_for(studio)
    big = json.dumps({"annotator": "a", "note": "x" * 70_000})
    assert (
        client.post(
            "/api/annotations", content=big, headers={"content-type": "application/json"}
        ).status_code
        == 413
    )
    assert (
        client.post(
            "/api/annotations", content="{}", headers={"content-type": "text/plain"}
        ).status_code
        == 415
    )
    evil = client.post("/api/annotations", json={}, headers={"origin": "http://evil.example"})
    assert evil.status_code == 403
    assert (
        client.post(
            "/api/annotations", content="[1", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    rebound = TestClient(create_app(studio), base_url="http://attacker.example")
    assert rebound.get("/api/files").status_code == 421
    for path in (
        "/static/..%2F..%2Fapp.py",
        "/static/studio.html.bak",
        "/api/files/1/episodes",
        "/etc/passwd",
    ):
        assert client.get(path).status_code == 404
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the CSP forbids it anyway


def test_ask_streams_steps_and_saves_the_episode(tmp_path, episodes):
    client = client_for(make_studio(tmp_path, episodes[0]))
    assert client.get("/api/config").json()["ask"] == {
        "tasks": ["tiny"],
        "agents": ["react"],
        "llms": ["scripted"],
    }
    assert (
        client.post(
            "/api/ask",
            json={"question": "Where?", "task": "x", "agent": "react", "llm": "scripted"},
        ).status_code
        == 400
    )
    job = client.post(
        "/api/ask",
        json={"question": "The Eiffel Tower stands in which country?", "answer": "France",
              "task": "tiny", "agent": "react", "llm": "scripted"},
    ).json()["job"]  # fmt: skip
    with client.stream("GET", f"/api/ask/{job}/events") as response:
        text = "".join(response.iter_text())
    events = [block.split("\n", 1)[0][len("event: ") :] for block in text.strip().split("\n\n")]
    assert events == ["started", "step", "step", "episode", "end"]
    episode = json.loads(text.split("event: episode\ndata: ")[1].split("\n\n")[0])
    assert episode["final_answer"] == "France" and episode["metrics"]["em"] == 1.0
    saved = client.post(f"/api/ask/{job}/save", json={}).json()
    assert saved == {"file": 1, "n": 0}
    assert (
        client.get("/api/files/1/episodes/0").json()["record"]["question"].startswith("The Eiffel")
    )
    assert len((tmp_path / "asked.jsonl").read_text().splitlines()) == 1


def test_ask_records_a_failing_backend_as_an_event(tmp_path, episodes):
    def broken(conversation):
        raise RuntimeError("backend down")

    asker = Asker(
        ["tiny"],
        ["react"],
        ["bad"],
        lambda t: make_tiny_env(),
        lambda a, m: ReActAgent(MockLLM(broken)),
    )
    studio = make_studio(tmp_path, episodes[0], asker=asker)
    client = client_for(studio)
    job = client.post(
        "/api/ask", json={"question": "Q?", "task": "tiny", "agent": "react", "llm": "bad"}
    ).json()["job"]
    deadline = time.monotonic() + 10
    while not studio.job(job).done and time.monotonic() < deadline:
        time.sleep(0.02)
    kinds = [event for event, _ in studio.job(job).events]
    assert kinds[-1] in ("failed", "episode")
    if kinds[-1] == "episode":
        assert studio.job(job).record.error
    assert client.post(f"/api/ask/{job}/save", json={}).status_code in (200, 409)


def test_the_studio_command_parses_its_three_actions(tmp_path, episodes, capsys):
    import argparse

    from raggym.benchmarks.studio.cli import studio_command

    parser = argparse.ArgumentParser(prog="raggym")
    studio_command(parser.add_subparsers(dest="command"))
    ann = tmp_path / "ann.jsonl"
    args = parser.parse_args(["studio", "agree", str(episodes[0]), "--annotations", str(ann)])
    assert args.func(args) == 0 and "annotators: none" in capsys.readouterr().out
    args = parser.parse_args(
        ["studio", "serve", str(episodes[0]), "--annotations", str(ann), "--port", "0",
         "--llm", "openai:http://127.0.0.1:1/v1:m", "--ask-task", "hotpotqa"]
    )  # fmt: skip
    assert (args.host, args.port, args.llm, args.agent) == (
        "127.0.0.1",
        0,
        ["openai:http://127.0.0.1:1/v1:m"],
        [],
    )
    with pytest.raises(SystemExit):
        parser.parse_args(
            [
                "studio",
                "export",
                str(episodes[0]),
                "--annotations",
                str(ann),
                "--format",
                "ppo",
                "--out",
                "x",
            ]
        )


def test_ask_choices_never_show_credentials():
    from raggym.benchmarks.studio.cli import build_asker

    asker = build_asker(["hotpotqa"], [], ["openai:http://u:sk-secret@127.0.0.1:1/v1:m"])
    shown = asker.choices()
    assert "sk-secret" not in json.dumps(shown) and shown["agents"][0] == "react"
    asker.check(task="hotpotqa", agent="react", llm=shown["llms"][0])
