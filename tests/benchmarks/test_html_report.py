"""The HTML report in a real browser: it loads cleanly, filters, expands, and shows text as text.

Runs headless Chromium through selenium; the module is skipped when selenium, chromium or
chromedriver is missing (``apt-get install chromium chromium-driver``).
"""

import dataclasses

import pytest

from raggym.agents.baselines import GoldEvidenceOracle, QuestionSearchHeuristic
from raggym.agents.rollout import rollout
from raggym.benchmarks.aggregate import aggregate_cell
from raggym.benchmarks.html_report import document_texts
from raggym.benchmarks.leaderboard import Leaderboard
from raggym.benchmarks.report import write_reports
from raggym_env import RAGEnv
from raggym_env.episode import Candidate, StepRecord

pytest.importorskip("selenium.webdriver", reason="selenium not installed")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

INJECTION = "</script><img src=x onerror=alert(1)>"
HOSTILE_DOC = "Before <script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
CI95 = {("hotpotqa", "heuristic"): {"em": (0.05, 0.45), "f1": (0.1, 0.5)}}
AGENTS = (("heuristic", QuestionSearchHeuristic), ("oracle", GoldEvidenceOracle))


def build_run():
    """Open QA + MC, two agents, a crash, a hostile question, candidates and an invalid step."""
    episodes, cells = {}, []
    for dataset, n, mc in (("hotpotqa", 6, False), ("medqa", 4, True)):
        for name, policy in AGENTS:
            records = rollout(RAGEnv(dataset, limit=n), policy())
            if (dataset, name) == ("hotpotqa", "heuristic"):
                records[2] = dataclasses.replace(
                    records[2], error="RuntimeError: boom", final_answer=None, metrics={}
                )
                records[3] = dataclasses.replace(records[3], question="Is this safe? " + INJECTION)
            if (dataset, name) == ("hotpotqa", "oracle"):
                records[0] = with_candidates(records[0])
            episodes[(dataset, name)] = records
            cell = aggregate_cell(
                records,
                [r.example_id for r in records],
                dataset=dataset,
                agent=name,
                task=dataset,
                multiple_choice=mc,
            )
            cells.append(dataclasses.replace(cell, ci95=CI95.get((dataset, name), {})))
    leaderboard = Leaderboard.from_cells(
        cells,
        suite={
            "name": "smoke",
            "description": "Two tiny offline datasets.",
            "retriever": "bm25",
            "k": 5,
            "max_steps": 4,
            "seeds": [0],
            "datasets": [{"name": "hotpotqa", "task": "hotpotqa"}],
            "agents": [{"name": "oracle", "agent": "gold-evidence-oracle"}],
        },
        run_card={"package_version": "0.1.0", "git_revision": "abc123", "git_dirty": True},
        created_at="2026-11-21T03:50:00+00:00",
    )
    return leaderboard, episodes


def build_documents(episodes):
    """Every retrieved text from the corpora, and one hostile document text."""
    documents = {}
    for (dataset, _), records in episodes.items():
        corpus = RAGEnv(dataset, limit=1).corpus
        documents.setdefault(dataset, {}).update(document_texts(records, corpus))
    first = episodes[("hotpotqa", "heuristic")][0].steps[0].retrieved[0].id
    documents["hotpotqa"][first] = HOSTILE_DOC
    return documents


def with_candidates(record):
    """Prepend an invalid step and give the first search three scored candidates."""
    search = record.steps[0]
    candidates = [
        Candidate("Search: Paris", {"type": "search", "text": "Paris"}, 0.25, "critic"),
        Candidate("no idea", error="no Search/Answer line"),
        Candidate("Search: " + search.action["text"], dict(search.action), 0.9, "critic"),
    ]
    invalid = StepRecord(
        index=0,
        action={"type": "invalid", "text": "<b>hm</b>"},
        raw_text="<b>hm</b>",
        action_error="no Search/Answer line",
    )
    search = dataclasses.replace(search, candidates=candidates, extra={"chosen": 2})
    steps = [invalid, search, *record.steps[1:]]
    steps = [dataclasses.replace(s, index=i) for i, s in enumerate(steps)]
    return dataclasses.replace(record, steps=steps)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    leaderboard, episodes = build_run()
    out = tmp_path_factory.mktemp("report")
    documents = build_documents(episodes)
    path = write_reports(leaderboard, episodes, out, formats=["html"], documents=documents)["html"]
    return path.as_uri(), leaderboard, episodes, documents


@pytest.fixture(scope="module")
def driver(start_chromium):
    browser = start_chromium("1280,1600", browser_log=True)
    yield browser
    browser.quit()


@pytest.fixture
def page(driver, run):
    """The report freshly loaded (filters reset)."""
    driver.get(run[0])
    return driver


def visible_episodes(driver):
    rows = driver.find_elements(By.CSS_SELECTOR, "#episodes .episode")
    return [e for e in rows if e.is_displayed()]


def counter(driver):
    return int(driver.find_element(By.ID, "episode-count").text)


def test_loads_without_console_errors_and_shows_the_leaderboard(page, run):
    _, leaderboard, episodes, _ = run
    severe = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    assert page.title == "smoke: RAGGym benchmark report"
    assert page.find_element(By.TAG_NAME, "h1").text == "Benchmark: smoke"
    rows = page.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
    assert len(rows) == len(leaderboard.cells) == 4
    assert rows[0].find_elements(By.TAG_NAME, "td")[0].text == "hotpotqa"
    assert len(page.find_elements(By.CSS_SELECTOR, "#summary tbody tr")) == 2
    total = sum(len(r) for r in episodes.values())
    assert counter(page) == total == len(visible_episodes(page)) == 20


def test_dataset_and_agent_filters(page, run):
    Select(page.find_element(By.ID, "filter-dataset")).select_by_value("medqa")
    shown = visible_episodes(page)
    assert counter(page) == len(shown) == 8
    assert {e.get_attribute("data-dataset") for e in shown} == {"medqa"}
    Select(page.find_element(By.ID, "filter-agent")).select_by_value("oracle")
    assert counter(page) == len(visible_episodes(page)) == 4
    assert "Acc 1" in visible_episodes(page)[0].text


def test_correctness_filter(page, run):
    _, _, episodes, _ = run
    status = Select(page.find_element(By.ID, "filter-status"))
    status.select_by_value("failed")
    (row,) = visible_episodes(page)
    assert counter(page) == 1
    failed = episodes[("hotpotqa", "heuristic")][2]
    assert row.find_element(By.CLASS_NAME, "question-text").text == failed.question
    assert row.find_element(By.CSS_SELECTOR, ".badge.error").is_displayed()
    assert "RuntimeError: boom" in row.text
    status.select_by_value("correct")
    correct = sum(
        (r.metrics.get("accuracy") if ds == "medqa" else r.metrics.get("em")) == 1
        for (ds, _), records in episodes.items()
        for r in records
        if r.error is None
    )
    assert counter(page) == len(visible_episodes(page)) == correct
    status.select_by_value("wrong")
    assert counter(page) == 20 - correct - 1


def test_text_search_narrows(page):
    search = page.find_element(By.ID, "filter-search")
    search.send_keys("derrickson")
    shown = visible_episodes(page)
    assert counter(page) == len(shown) == 2
    assert all("Scott Derrickson" in e.text for e in shown)
    search.send_keys(" zzzz")
    assert counter(page) == 0
    assert page.find_element(By.CSS_SELECTOR, "#episodes .empty").is_displayed()


def test_clicking_an_episode_shows_its_steps_retrieved_titles_and_candidates(page, run):
    _, _, episodes, _ = run
    record = episodes[("hotpotqa", "oracle")][0]
    Select(page.find_element(By.ID, "filter-agent")).select_by_value("oracle")
    page.find_element(By.ID, "filter-search").send_keys("derrickson")
    (row,) = visible_episodes(page)
    assert row.find_elements(By.CSS_SELECTOR, ".step") == []
    row.find_element(By.CLASS_NAME, "episode-head").click()
    steps = row.find_elements(By.CSS_SELECTOR, ".step")
    assert len(steps) == len(record.steps)
    gold = set(record.gold["evidence_titles"])
    for element, step in zip(steps, record.steps, strict=True):
        assert element.find_element(By.CSS_SELECTOR, ".action").text.lower() == step.action_type
        titles = [t.text for t in element.find_elements(By.CSS_SELECTOR, ".doc .doc-title")]
        assert titles == [d.title for d in step.retrieved]
        highlighted = element.find_elements(By.CSS_SELECTOR, ".doc.gold .doc-title")
        assert [t.text for t in highlighted] == [d.title for d in step.retrieved if d.title in gold]
    invalid = steps[0]
    assert invalid.find_element(By.CSS_SELECTOR, "pre.raw").text == "<b>hm</b>"
    assert "no Search/Answer line" in invalid.find_element(By.CLASS_NAME, "step-error").text
    candidates = steps[1].find_elements(By.CSS_SELECTOR, "tr.candidate")
    assert len(candidates) == 3
    chosen = steps[1].find_elements(By.CSS_SELECTOR, "tr.candidate.chosen")
    assert chosen == [candidates[2]]
    assert "0.900" in chosen[0].text
    final = row.find_element(By.CSS_SELECTOR, ".final").text
    assert "final answer" in final and record.final_answer in final
    assert "em 1" in final
    row.find_element(By.CLASS_NAME, "episode-head").click()
    assert not steps[0].is_displayed()


def test_hostile_question_renders_as_text(page):
    page.find_element(By.ID, "filter-search").send_keys("safe?")
    (row,) = visible_episodes(page)
    text = row.find_element(By.CLASS_NAME, "question-text").text
    assert text == "Is this safe? " + INJECTION
    row.find_element(By.CLASS_NAME, "episode-head").click()
    assert page.find_elements(By.CSS_SELECTOR, "img:not(.plot)") == []
    assert page.execute_script("return document.querySelectorAll('img:not(.plot), b').length") == 0
    assert [e for e in page.get_log("browser") if e["level"] == "SEVERE"] == []


def test_clicking_a_leaderboard_row_filters_the_episodes(page):
    page.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")[3].click()
    shown = visible_episodes(page)
    assert counter(page) == len(shown) == 4
    assert {(e.get_attribute("data-dataset"), e.get_attribute("data-agent")) for e in shown} == {
        ("medqa", "oracle")
    }


def test_retrieved_titles_expand_to_their_document_text(page, run):
    _, _, episodes, documents = run
    record = episodes[("hotpotqa", "oracle")][0]
    Select(page.find_element(By.ID, "filter-agent")).select_by_value("oracle")
    page.find_element(By.ID, "filter-search").send_keys("derrickson")
    (row,) = visible_episodes(page)
    row.find_element(By.CLASS_NAME, "episode-head").click()
    doc = record.steps[1].retrieved[0]  # step 0 is the invalid one
    first = row.find_element(By.CSS_SELECTOR, ".step .doc details.doc-details")
    text = first.find_element(By.CLASS_NAME, "doc-text")
    assert first.find_element(By.CLASS_NAME, "doc-title").text == doc.title
    assert not text.is_displayed()
    first.find_element(By.TAG_NAME, "summary").click()
    assert text.is_displayed()
    assert text.text == documents["hotpotqa"][doc.id].strip()
    first.find_element(By.TAG_NAME, "summary").click()
    assert not text.is_displayed()


def test_a_script_in_a_document_stays_text(page, run):
    Select(page.find_element(By.ID, "filter-agent")).select_by_value("heuristic")
    Select(page.find_element(By.ID, "filter-dataset")).select_by_value("hotpotqa")
    row = visible_episodes(page)[0]
    row.find_element(By.CLASS_NAME, "episode-head").click()
    first = row.find_element(By.CSS_SELECTOR, ".step .doc details.doc-details")
    first.find_element(By.TAG_NAME, "summary").click()
    assert first.find_element(By.CLASS_NAME, "doc-text").text == HOSTILE_DOC
    assert page.execute_script("return window.pwned === undefined")
    assert page.execute_script("return document.querySelectorAll('script').length") == 2
    assert page.find_elements(By.CSS_SELECTOR, "img:not(.plot)") == []


def test_chart_and_per_step_plots_are_embedded_and_load(page):
    pytest.importorskip("matplotlib")
    images = page.find_elements(By.CSS_SELECTOR, "img.plot")
    assert len(images) == 3  # the leaderboard chart and one figure per dataset
    for image in images:
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        loaded = "return arguments[0].complete && arguments[0].naturalWidth"
        assert page.execute_script(loaded, image) > 300
    sections = page.find_elements(By.CSS_SELECTOR, ".analysis-dataset")
    assert [s.get_attribute("data-dataset") for s in sections] == ["hotpotqa", "medqa"]
    outcomes = sections[0].find_elements(By.CSS_SELECTOR, "table.outcomes tbody tr")
    oracle = outcomes[1].find_elements(By.TAG_NAME, "td")
    assert [oracle[0].text, oracle[1].text, oracle[3].text] == ["oracle", "6", "6 (100%)"]
    heuristic = outcomes[0].text
    assert "1 (17%)" in heuristic  # the crashed episode, in the failed bucket


def test_intervals_latency_units_and_cell_configurations_are_shown(page):
    rows = page.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
    first = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
    titles = [th.text for th in page.find_elements(By.CSS_SELECTOR, "#leaderboard thead th")]
    assert first[titles.index("EM")].endswith("[0.050, 0.450]")
    second = [td.text for td in rows[1].find_elements(By.TAG_NAME, "td")]
    assert "[" not in second[titles.index("EM")]
    summary = page.find_element(By.CSS_SELECTOR, "#summary tbody tr").text
    assert "[0.100, 0.500]" in summary
    latency = [t for t in titles if t.endswith(("q p50", "step p50"))]
    assert len(latency) == 2 and all(t.startswith(("ms/", "s/")) for t in latency)
    configs = page.find_elements(By.CSS_SELECTOR, "#configs tbody tr")
    assert len(configs) == 4
    oracle = [td.text for td in configs[1].find_elements(By.TAG_NAME, "td")]
    assert oracle[:5] == ["hotpotqa", "oracle", "gold-evidence-oracle", "bm25", "5"]
