import json
import re
from pathlib import Path

import pytest

from raggym.agents.baselines import GoldEvidenceOracle
from raggym.agents.registry import AGENTS
from raggym.agents.rollout import run_episode
from raggym.benchmarks.suite import (
    SUITES_DIR,
    AgentConfig,
    DatasetConfig,
    LLMConfig,
    Suite,
    SuiteError,
    available_suites,
    load_suite,
    parse_suite,
)
from raggym_env.env import RAGEnv

MINIMAL = """
name = "mini"
[[datasets]]
task = "hotpotqa"
[[agents]]
agent = "heuristic"
"""


def suite_text(datasets: str = '[[datasets]]\ntask = "hotpotqa"\n', agents: str = "", top=""):
    agents = agents or '[[agents]]\nagent = "heuristic"\n'
    return f'name = "t"\n{top}\n{datasets}\n{agents}'


# ---------------------------------------------------------------- packaged suites
def test_available_suites_lists_the_packaged_files():
    assert {"smoke", "paper", "custom_example"} <= set(available_suites())


@pytest.mark.parametrize("name", sorted(p.stem for p in SUITES_DIR.glob("*.toml")))
def test_every_packaged_suite_loads(name, tmp_path):
    suite = load_suite(name, data_dir=tmp_path)
    assert suite.name == name
    assert suite.description
    assert suite.datasets and suite.agents
    assert Path(suite.source) == SUITES_DIR / f"{name}.toml"
    json.dumps(suite.to_dict())


def test_smoke_cells_and_settings():
    suite = load_suite("smoke")
    assert [d.task for d in suite.datasets] == ["hotpotqa", "2wikimultihopqa", "bamboogle", "medqa"]
    assert all(d.path is None and d.select is None and d.corpus is None for d in suite.datasets)
    cells = suite.cells()
    assert len(cells) == 8
    assert cells[0] == (suite.datasets[0], suite.agents[0])
    assert [(d.name, a.name) for d, a in cells[:2]] == [
        ("hotpotqa", "heuristic"),
        ("hotpotqa", "oracle"),
    ]
    assert (suite.retriever, suite.k, suite.max_steps, suite.seeds) == ("bm25", 5, 10, (0,))
    assert not suite.needs_llm
    assert suite.llm == LLMConfig()
    assert suite.check_files() == []
    assert "no model" in suite.description
    assert len({cell for cell in cells}) == 8  # specs are hashable


def test_smoke_env_kwargs_build_an_environment():
    suite = load_suite("smoke")
    kwargs = suite.env_kwargs(suite.datasets[2])
    assert kwargs == {
        "task": "bamboogle",
        "data_path": None,
        "select": None,
        "corpus": None,
        "retriever": "bm25",
        "retriever_options": {},
        "k": 5,
        "max_steps": 10,
    }
    env = RAGEnv(**kwargs)
    assert env.task.name == "bamboogle" and len(env.examples) == 125


PAPER_FILES = (
    "hotpotqa/hotpot_dev_fullwiki_v1.json",
    "corpora/wiki_hotpotqa/chunk",
    "2wikimultihopqa/dev.json",
    "corpora/wikipedia/chunk",
    "bamboogle/Bamboogle_Prerelease.tsv",
    "medqa/phrases_no_exclude_test.jsonl",
    "corpora/medtext",
)


def test_paper_suite_protocol(tmp_path):
    suite = load_suite("paper", data_dir=tmp_path)
    assert suite.protocol == "rag-gym"
    assert suite.needs_llm and suite.llm.spec is None
    assert {a.agent for a in suite.agents} == set(AGENTS)
    by_task = {d.task: d for d in suite.datasets}
    assert by_task["hotpotqa-fullwiki"].select == "last:1000"
    assert by_task["2wikimultihopqa"].select == "last:1000"
    assert by_task["bamboogle"].select is None and by_task["medqa"].select is None
    assert by_task["hotpotqa-fullwiki"].path == str(
        tmp_path / "hotpotqa/hotpot_dev_fullwiki_v1.json"
    )
    assert by_task["hotpotqa-fullwiki"].corpus == str(tmp_path / "corpora/wiki_hotpotqa/chunk")
    assert by_task["bamboogle"].corpus == by_task["2wikimultihopqa"].corpus
    assert (suite.retriever, suite.k, suite.max_steps) == ("hybrid", 32, 10)
    assert suite.retriever_options["rrf_k"] == 60
    assert suite.retriever_options["min_depth"] == 100
    assert suite.retriever_options["dense"]["model"] == "BAAI/bge-base-en-v1.5"
    assert suite.retriever_options["dense"]["index_type"] == "hnsw"
    assert suite.retriever_options["dense"]["hnsw_ef_search"] == 32
    medqa = suite.env_kwargs(by_task["medqa"])["retriever_options"]
    assert (medqa["dense"]["model"], medqa["dense"]["encoder"]) == (
        "ncbi/MedCPT-Article-Encoder",
        "medcpt",
    )
    assert medqa["rrf_k"] == 60 and medqa["dense"]["hnsw_ef_search"] == 32
    hotpot = suite.env_kwargs(by_task["hotpotqa-fullwiki"])["retriever_options"]
    assert hotpot["dense"]["model"] == "BAAI/bge-base-en-v1.5"
    problems = suite.check_files()
    assert len(problems) == 8  # 4 question files, 4 corpora (one shared, named twice)
    assert "hot" + "pot_dev_fullwiki_v1.json" in problems[0]


def test_paper_suite_finds_files_under_data_dir(tmp_path):
    for name in PAPER_FILES:
        if "corpora" in name:
            (tmp_path / name).mkdir(parents=True, exist_ok=True)
        else:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("[]")
    assert load_suite("paper", data_dir=tmp_path).check_files() == []


def test_paper_suite_without_data_dir_names_the_flag():
    problems = load_suite("paper").check_files()
    assert len(problems) == 8
    assert all("--data-dir" in p for p in problems)


def test_protocol_key_is_checked_and_recorded():
    text = 'name = "x"\nprotocol = "rag-gym"\n[[datasets]]\ntask = "hotpotqa"\n'
    text += '[[agents]]\nagent = "react"\noptions = { official_prompts = "/x" }\n'
    suite = parse_suite(text)
    assert suite.protocol == "rag-gym" and suite.to_dict()["protocol"] == "rag-gym"
    bad = text.replace('"rag-gym"', '"ragym"')
    with pytest.raises(SuiteError, match="protocol"):
        parse_suite(bad)
    raggym = text.replace('protocol = "rag-gym"\n', "")
    with pytest.raises(SuiteError, match="official_prompts"):
        parse_suite(raggym)  # an option only the protocol's designs take


def test_custom_example_oracle_solves_it():
    suite = load_suite("custom_example", data_dir="/nonexistent/data")  # ${suite_dir} paths
    (dataset,) = suite.datasets
    assert suite.check_files() == ["--data-dir /nonexistent/data: no such folder"]
    assert dataset.path == str(SUITES_DIR / "custom_example" / "questions.jsonl")
    env = RAGEnv(**suite.env_kwargs(dataset))
    assert 8 <= len(env.examples) <= 12
    assert 25 <= len(env.corpus) <= 40
    records = [run_episode(env, GoldEvidenceOracle(), options={"index": i}) for i in range(12)]
    assert all(r.metrics["em"] == 1.0 for r in records)
    assert all(r.metrics["evidence_recall"] == 1.0 for r in records)
    assert all(len(ex.evidence.titles) >= 2 for ex in env.examples)  # multi-hop


# ---------------------------------------------------------------- overrides
def test_with_overrides_caps_selection_keeping_its_kind():
    text = suite_text(
        '[[datasets]]\nname = "a"\ntask = "hotpotqa"\nselect = "last:1000"\n'
        '[[datasets]]\nname = "b"\ntask = "hotpotqa"\n'
        '[[datasets]]\nname = "c"\ntask = "hotpotqa"\nselect = "all"\n'
        '[[datasets]]\nname = "d"\ntask = "hotpotqa"\nselect = "sample:50@7"\n'
        '[[datasets]]\nname = "e"\ntask = "hotpotqa"\nselect = "first:3"\n'
    )
    suite = parse_suite(text)
    capped = suite.with_overrides(limit=20)
    assert [d.select for d in capped.datasets] == [
        "last:20",
        "first:20",
        "first:20",
        "sample:20@7",
        "first:3",
    ]
    assert [d.select for d in suite.datasets] == ["last:1000", None, None, "sample:50@7", "first:3"]
    assert capped.with_overrides() == capped


def test_with_overrides_llm_keeps_options():
    suite = parse_suite(suite_text(top='[llm]\nspec = "vllm:m"\noptions = { concurrency = 8 }'))
    other = suite.with_overrides(llm="openai:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct")
    assert other.llm.spec.startswith("openai:") and other.llm.options == {"concurrency": 8}
    assert suite.llm.spec == "vllm:m"
    assert suite.with_overrides(llm=LLMConfig("hf:p")).llm == LLMConfig("hf:p")


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_with_overrides_rejects_bad_limit(limit):
    with pytest.raises(SuiteError, match="limit must be a positive int"):
        parse_suite(MINIMAL).with_overrides(limit=limit)


def test_with_overrides_rejects_bad_llm():
    with pytest.raises(SuiteError, match="'spec'"):
        parse_suite(MINIMAL).with_overrides(llm="gpt4")


# ---------------------------------------------------------------- paths
def write_suite(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mine.toml"
    path.write_text(body)
    return path


def test_relative_paths_resolve_against_the_suite_folder(tmp_path):
    body = suite_text('[[datasets]]\ntask = "custom"\npath = "q.jsonl"\ncorpus = "docs"\n')
    body = body.replace('name = "t"', "")
    path = write_suite(tmp_path / "suites", body)
    suite = load_suite(path)
    assert suite.name == "mine"  # default: the file stem
    assert suite.datasets[0].path == str(tmp_path / "suites" / "q.jsonl")
    assert suite.datasets[0].corpus == str(tmp_path / "suites" / "docs")
    problems = suite.check_files()
    assert len(problems) == 2
    assert "question file not found" in problems[0] and "--data-dir" in problems[0]
    assert "corpus not found" in problems[1]
    (tmp_path / "suites" / "q.jsonl").write_text("")
    (tmp_path / "suites" / "docs").mkdir()
    assert suite.check_files() == []


def test_relative_paths_resolve_against_data_dir(tmp_path):
    body = suite_text(
        '[[datasets]]\ntask = "custom"\npath = "q.jsonl"\n'
        'corpus = "${suite_dir}/c.jsonl"\n'
        '[[datasets]]\nname = "abs"\ntask = "hotpotqa"\npath = "/abs/h.json"\n'
        '[[datasets]]\nname = "hub"\ntask = "hotpotqa"\npath = "hub"\n'
    )
    path = write_suite(tmp_path / "suites", body)
    suite = load_suite(path, data_dir=tmp_path / "data")
    assert suite.data_dir == str(tmp_path / "data")
    assert suite.datasets[0].path == str(tmp_path / "data" / "q.jsonl")
    assert suite.datasets[0].corpus == str(tmp_path / "suites" / "c.jsonl")
    assert suite.datasets[1].path == "/abs/h.json"
    assert suite.datasets[2].path == "hub"
    problems = suite.check_files()
    assert problems[0] == f"--data-dir {tmp_path / 'data'}: no such folder"
    assert any("q.jsonl" in p and "--data-dir" in p for p in problems)
    assert not any("hub" in p for p in problems)


def test_data_dir_placeholder_without_data_dir_is_reported_not_raised(tmp_path):
    body = suite_text('[[datasets]]\ntask = "hotpotqa"\npath = "${data_dir}/h.json"\n')
    suite = load_suite(write_suite(tmp_path, body))
    (problem,) = suite.check_files()
    assert "${data_dir}" in problem and "pass --data-dir" in problem
    resolved = load_suite(write_suite(tmp_path, body), data_dir=tmp_path)
    assert resolved.datasets[0].path == str(tmp_path / "h.json")


def test_placeholder_check_is_linear_on_unclosed_openings(tmp_path):
    import time

    path = "${" * 20_000 + "x"  # never closed: a backtracking scan is quadratic here
    body = suite_text(f'[[datasets]]\ntask = "hotpotqa"\npath = "{path}"\n')
    start = time.perf_counter()
    load_suite(write_suite(tmp_path, body))  # an odd but legal relative path
    assert time.perf_counter() - start < 2.0
    with pytest.raises(SuiteError, match="optionally starting with"):
        load_suite(write_suite(tmp_path, body.replace(path, "a/${data_dir}/b")))


def test_load_suite_unknown_name_lists_packaged_suites():
    with pytest.raises(FileNotFoundError, match="smoke"):
        load_suite("no_such_suite")
    with pytest.raises(FileNotFoundError, match="no such suite file"):
        load_suite("missing/suite.toml")


# ---------------------------------------------------------------- validation
BAD_SUITES = [
    pytest.param(
        'name = "t"\n[[agents]]\nagent = "oracle"', r"no \[\[datasets\]\]", id="no-datasets"
    ),
    pytest.param(
        'name = "t"\ndatasets = []\n[[agents]]\nagent = "oracle"',
        r"\[\[datasets\]\] is empty",
        id="empty-datasets",
    ),
    pytest.param(
        'name = "t"\nagents = []\n[[datasets]]\ntask = "medqa"',
        r"\[\[agents\]\] is empty",
        id="empty-agents",
    ),
    pytest.param(suite_text(top="colour = 1"), r"unknown key 'colour'; allowed keys", id="key"),
    pytest.param(
        suite_text('[[datasets]]\ntask = "hotpotqa"\nlimit = 3\n'),
        r"\[\[datasets\]\] #1 \(task 'hotpotqa'\): unknown key 'limit'",
        id="dataset-key",
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "oracle"\ntemp = 1\n'),
        r"\[\[agents\]\] #1 .*unknown key 'temp'",
        id="agent-key",
    ),
    pytest.param(
        suite_text(top='[llm]\nmodel = "x"'), r"\[llm\]: unknown key 'model'", id="llm-key"
    ),
    pytest.param(
        suite_text('[[datasets]]\ntask = "squad"\n'), r"key 'task': unknown task 'squad'", id="task"
    ),
    pytest.param(
        suite_text('[[datasets]]\nname = "x"\n'), "missing required key 'task'", id="no-task"
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "gpt"\n'),
        r"key 'agent': got 'gpt'; allowed: cot, cot\+\+",
        id="agent",
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nname = "x"\n'), "missing required key 'agent'", id="no-agent"
    ),
    pytest.param(
        suite_text('[[datasets]]\ntask = "hotpotqa"\n[[datasets]]\ntask = "hotpotqa"\n'),
        r"\[\[datasets\]\] #2: duplicate name 'hotpotqa'",
        id="duplicate-dataset",
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "oracle"\n[[agents]]\nagent = "oracle"\n'),
        r"\[\[agents\]\] #2: duplicate name 'oracle'",
        id="duplicate-agent",
    ),
    pytest.param(
        suite_text('[[datasets]]\ntask = "hotpotqa"\nselect = "top:5"\n'),
        r"key 'select': got 'top:5'; allowed: 'all', 'first:N'",
        id="select",
    ),
    pytest.param(
        suite_text('[[datasets]]\ntask = "hotpotqa"\nselect = 5\n'),
        "key 'select': got 5; allowed: a string",
        id="select-type",
    ),
    pytest.param(suite_text(top="k = 0"), "key 'k': got 0; allowed: a positive integer", id="k"),
    pytest.param(suite_text(top='k = "5"'), "key 'k': got '5'", id="k-type"),
    pytest.param(suite_text(top="k = true"), "key 'k': got True", id="k-bool"),
    pytest.param(suite_text(top="max_steps = -1"), "key 'max_steps': got -1", id="max_steps"),
    pytest.param(suite_text(top="batch_size = 1.5"), "key 'batch_size': got 1.5", id="batch"),
    pytest.param(suite_text(top="seeds = []"), "key 'seeds': got \\[\\]", id="seeds-empty"),
    pytest.param(suite_text(top="seeds = [0, 0]"), "key 'seeds'", id="seeds-duplicate"),
    pytest.param(suite_text(top="seeds = [-1]"), "key 'seeds'", id="seeds-negative"),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "re2search++"\n'),
        "agent 're2search\\+\\+' needs key 'critic'",
        id="plusplus-without-critic",
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "re2search++"\ncritic = "best"\n'),
        "key 'critic': got 'best'; allowed: 'gold', 'judge' or 'rm:PATH'",
        id="critic",
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "react"\ncritic = "gold"\n'),
        "key 'critic' applies only to NAME\\+\\+ agents",
        id="critic-without-plusplus",
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "react++"\ncritic = "gold"\nn = 0\n'),
        "key 'n': got 0",
        id="n",
    ),
    pytest.param(
        suite_text(agents='[[agents]]\nagent = "oracle"\noptions = 3\n'),
        "key 'options': got 3; allowed: a table",
        id="options",
    ),
    pytest.param(
        suite_text(top='retriever = "bm26"'), "key 'retriever': got 'bm26'", id="retriever"
    ),
    pytest.param(
        suite_text(top='[llm]\nspec = "gpt-4"'),
        r"\[llm\]: key 'spec': got 'gpt-4'; allowed: 'openai:URL:MODEL'",
        id="llm-spec",
    ),
    pytest.param(
        suite_text('[[datasets]]\ntask = "custom"\n'), "task 'custom' needs key 'path'", id="custom"
    ),
    pytest.param(
        suite_text('[[datasets]]\ntask = "hotpotqa"\npath = "${home}/x"\n'),
        r"key 'path': got '\$\{home\}/x'",
        id="placeholder",
    ),
    pytest.param(
        suite_text('[[datasets]]\ntask = "hotpotqa"\nname = "a b"\n'),
        "key 'name': got 'a b'; allowed: letters, digits",
        id="name",
    ),
    pytest.param('name = "t"\n[[datasets]\n', "not valid TOML", id="toml"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SUITES)
def test_validation_errors_name_file_table_and_key(text, message, tmp_path):
    path = write_suite(tmp_path, text)
    with pytest.raises(SuiteError, match=message) as caught:
        load_suite(path)
    assert str(caught.value).startswith(str(path))


def test_parse_suite_without_a_file_needs_a_name():
    with pytest.raises(SuiteError, match="<suite>: missing key 'name'"):
        parse_suite(MINIMAL.replace('name = "mini"', ""))


def test_parse_suite_accepts_a_mapping_and_defaults():
    suite = parse_suite(
        {
            "name": "m",
            "datasets": [{"task": "2wiki", "select": "sample:5@1"}],
            "agents": [{"agent": "re2search++", "critic": "rm:runs/critic", "n": 4}],
        }
    )
    assert suite.datasets == (
        DatasetConfig(name="2wikimultihopqa", task="2wikimultihopqa", select="sample:5@1"),
    )
    assert suite.agents == (
        AgentConfig("re2search++", "re2search++", critic="rm:runs/critic", n=4),
    )
    assert suite.needs_llm
    assert (suite.description, suite.batch_size, suite.source, suite.data_dir) == (
        "",
        32,
        None,
        None,
    )
    with pytest.raises(TypeError):
        parse_suite(42)  # type: ignore[arg-type]


def test_env_kwargs_merge_retriever_options():
    suite = parse_suite(
        suite_text(
            '[[datasets]]\nname = "a"\ntask = "hotpotqa"\nretriever_options = { k1 = 1.2 }\n'
            '[[datasets]]\nname = "b"\ntask = "hotpotqa"\nretriever = "fake"\n',
            top="retriever_options = { cache = true, b = 0.7 }",
        )
    )
    a, b = (suite.env_kwargs(d) for d in suite.datasets)
    assert (a["retriever"], a["retriever_options"]) == (
        "bm25",
        {"cache": True, "b": 0.7, "k1": 1.2},
    )
    assert (b["retriever"], b["retriever_options"]) == ("fake", {})


def test_to_dict_is_json_and_specs_are_read_only():
    text = suite_text(
        agents='[[agents]]\nagent = "rag"\noptions = { seed = 2024-01-02, stop = { x = [1] } }\n'
    )
    suite = parse_suite(text)
    data = json.loads(json.dumps(suite.to_dict()))
    assert data["agents"][0]["options"] == {"seed": "2024-01-02", "stop": {"x": [1]}}
    assert data["datasets"][0]["task"] == "hotpotqa" and data["llm"] == {
        "spec": None,
        "options": {},
    }
    assert set(data) >= {"name", "k", "max_steps", "seeds", "batch_size", "source", "data_dir"}
    with pytest.raises(TypeError):
        suite.agents[0].options["x"] = 1  # type: ignore[index]
    assert isinstance(hash(suite), int)
    assert isinstance(Suite("s", "", suite.datasets, suite.agents).llm, LLMConfig)


def test_every_problem_is_reported_at_once_with_did_you_mean(tmp_path):
    text = suite_text(
        '[[datasets]]\ntask = "hotpotqa"\nretriever_options = { k_1 = 1.2 }\n'
        '[[datasets]]\ntask = "hotpotqa"\nname = "second"\nselect = "first:99999999999999999999"\n',
        top="batch_size = 1000000000\nmax_steps = 100000000000000000000\nmax_step = 3\nk = 5000",
        agents=(
            '[[agents]]\nagent = "re2serch"\n'
            '[[agents]]\nagent = "rag"\nname = "r"\noptions = { temprature = 0.5 }\n'
            '[[agents]]\nagent = "oracle"\nname = "o"\noptions = { fast = true }\n'
        ),
    )
    path = write_suite(tmp_path, text)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 9 problems:\n")
    for expected in (
        "key 'batch_size': got 1000000000; allowed: a positive integer up to 4_096",
        "key 'max_steps': got 100000000000000000000; allowed: a positive integer up to 1_000",
        "unknown key 'max_step' (did you mean 'max_steps'?)",
        "key 'k': got 5000; allowed: a positive integer up to 1_000",
        "[[datasets]] #1 (task 'hotpotqa'): key 'retriever_options': unknown option 'k_1' "
        "for 'bm25' (did you mean 'k1'?)",
        "[[datasets]] #2 (name 'second'): key 'select'",
        "[[agents]] #1 (agent 're2serch'): key 'agent': got 're2serch' (did you mean 're2search'?)",
        "[[agents]] #2 (name 'r'): key 'options': unknown option 'temprature' for agent 'rag' "
        "(did you mean 'temperature'?)",
        "[[agents]] #3 (name 'o'): key 'options': unknown option 'fast' for agent 'oracle'; "
        "allowed: none",
    ):
        assert expected in message
    assert all(
        line.startswith(f"  {i}. {path}: ") for i, line in enumerate(message.splitlines()[1:], 1)
    )


def test_retriever_options_are_checked_against_the_builder(tmp_path):
    ok = suite_text(
        top='retriever = "remote"\nretriever_options = { url = "http://x", timeout_s = 2 }'
    )
    assert parse_suite(ok).retriever_options["timeout_s"] == 2
    bad = suite_text(
        top='retriever = "remote"\nretriever_options = { url = "http://x", timeout = 2 }'
    )
    with pytest.raises(
        SuiteError, match=r"unknown option 'timeout' for 'remote' \(did you mean 'timeout_s'\?\)"
    ):
        parse_suite(bad)
    with pytest.raises(SuiteError, match=r"key 'retriever': got 'bm52' \(did you mean 'bm25'\?\)"):
        parse_suite(suite_text(top='retriever = "bm52"'))


def test_symlink_loops_and_deep_toml_are_suite_errors(tmp_path):
    loop_a, loop_b = tmp_path / "a.toml", tmp_path / "b.toml"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    with pytest.raises(SuiteError, match=r"a\.toml.*cannot resolve"):
        load_suite(loop_a)
    (tmp_path / "c").symlink_to(tmp_path / "d")
    (tmp_path / "d").symlink_to(tmp_path / "c")
    looped = write_suite(tmp_path, suite_text('[[datasets]]\ntask = "hotpotqa"\ncorpus = "c/x"\n'))
    with pytest.raises(
        SuiteError, match=rf"{re.escape(str(looped))}: .*key 'corpus'.*cannot resolve"
    ):
        load_suite(looped)
    deep = write_suite(tmp_path, suite_text(top="x = " + "[" * 100_000 + "]" * 100_000))
    with pytest.raises(SuiteError, match=r"not valid TOML: arrays or tables nested too deeply"):
        load_suite(deep)


def test_limit_override_is_bounded():
    suite = parse_suite(suite_text())
    with pytest.raises(SuiteError, match="up to 10_000_000, got an integer of more than 80 digits"):
        suite.with_overrides(limit=10**100)


# ---------------------------------------------------------------- credentials
SECRET_SUITES = [
    pytest.param('[llm]\nspec = "vllm:m"\noptions = { api_key = "CANARY" }', "llm.options.api_key",
                 id="api_key"),
    pytest.param('[llm]\nspec = "openai:http://u:CANARY@h:8000/v1:m"', "llm.spec", id="url"),
    pytest.param('[llm]\noptions = { extra_body = { token = "CANARY" } }',
                 "llm.options.extra_body.token", id="nested"),
    pytest.param('[llm]\noptions = { headers = { Authorization = "Bearer CANARY" } }',
                 "llm.options.headers.Authorization", id="header"),
    pytest.param('retriever_options = { url = "http://h/?key=CANARY" }',
                 "retriever_options.url", id="query"),
    pytest.param('retriever_options = { password = "CANARY" }', "retriever_options.password",
                 id="password"),
]  # fmt: skip


@pytest.mark.parametrize(("top", "path"), SECRET_SUITES)
def test_suite_files_refuse_credentials_and_point_to_api_key_env(top, path, tmp_path):
    suite_file = write_suite(tmp_path, suite_text(top=top))
    with pytest.raises(SuiteError, match="credentials do not belong in a suite file") as caught:
        load_suite(suite_file)
    message = str(caught.value)
    assert path in message and "api_key_env" in message and "--api-key-env" in message
    assert "CANARY" not in message


def test_suite_files_may_name_the_key_variable_and_store_cli_specs_redacted():
    suite = parse_suite(suite_text(top='[llm]\nspec = "vllm:m"\noptions = { api_key_env = "K" }'))
    assert suite.llm.options == {"api_key_env": "K"}
    run = suite.with_overrides(llm="openai:http://u:CANARY@127.0.0.1:1/v1:m")
    assert run.llm.spec == "openai:http://u:CANARY@127.0.0.1:1/v1:m"  # the backend needs it
    stored = json.dumps(run.to_dict())
    assert "CANARY" not in stored and "openai:http://***@127.0.0.1:1/v1:m" in stored
    with pytest.raises(SuiteError) as caught:
        suite.with_overrides(llm="gpt:http://u:CANARY@h")
    assert "CANARY" not in str(caught.value)
