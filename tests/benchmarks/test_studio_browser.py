"""The annotation studio in headless Chromium: rank, mark, reload, export, agree, ask, XSS.

Skipped when selenium, chromium or chromedriver is missing. Set ``RAGGYM_STUDIO_SCREENS``
to a folder to keep a screenshot of each view.
"""

import importlib.util
import json
import os
import urllib.request
from pathlib import Path

import pytest

from raggym.agents.react import ReActAgent
from raggym.benchmarks.studio import Studio, create_app
from raggym.benchmarks.studio.ask import Asker
from raggym.testing import make_tiny_env
from raggym.testing.llms import ScriptedLLM
from raggym.trainers.annotations import annotation_rows
from raggym_env.retrieval.server import BackgroundServer

pytest.importorskip("selenium.webdriver", reason="selenium not installed")
pytest.importorskip("uvicorn")
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

_spec = importlib.util.spec_from_file_location(
    "studio_cases", Path(__file__).with_name("test_studio.py")
)
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


@pytest.fixture(scope="module")
def browser(start_chromium):
    driver = start_chromium("1400,1000")
    yield driver
    driver.quit()


def shot(driver, name):
    folder = os.environ.get("RAGGYM_STUDIO_SCREENS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def post(url, body):
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_studio_in_a_browser(browser, tmp_path):
    path = tmp_path / "episodes.jsonl"
    records = cases.build_episodes(path, hostile=True)
    replies = [
        "Thought: find it.\nAction: Search[Eiffel Tower]",
        "Thought: Paris.\nAction: Finish[France]",
    ]
    asker = Asker(
        ["tiny"], ["react"], ["scripted"],
        lambda task: make_tiny_env(max_steps=3),
        lambda agent, llm: ReActAgent(ScriptedLLM(replies)),
    )  # fmt: skip
    studio = Studio(
        [path], tmp_path / "ann.jsonl", documents=make_tiny_env().corpus,
        exporter=annotation_rows, asker=asker, ask_out=tmp_path / "asked.jsonl",
    )  # fmt: skip
    wait = WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException])
    with BackgroundServer(create_app(studio)) as server:
        url = server.url

        def load():
            browser.get(url + "/")
            wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))

        def open_episode(n, file=0):
            browser.find_element(By.CSS_SELECTOR, f'#episode-list li[data-n="{n}"]').click()
            shown = f"{file}/{n}"
            wait.until(
                lambda d: (
                    d.find_element(By.ID, "episode-pane").get_attribute("data-episode") == shown
                )
            )

        def saved(text):
            wait.until(lambda d: text in d.find_element(By.ID, "status").text)

        def order():
            items = browser.find_elements(By.CSS_SELECTOR, '.step[data-step="0"] .candidate')
            return [int(li.get_attribute("data-index")) for li in items]

        load()
        name = browser.find_element(By.ID, "annotator")
        name.clear()
        name.send_keys("ann")
        # the hostile question is listed and shown as text; nothing it carries runs
        open_episode(0)
        heading = browser.find_element(By.CSS_SELECTOR, "#episode-pane h2.question").text
        assert heading == "Safe? " + cases.HOSTILE
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-pwned") is None
        assert not browser.find_elements(By.CSS_SELECTOR, "#episode-pane img, #episode-list img")
        docs = browser.find_elements(By.CSS_SELECTOR, '.step[data-step="0"] .doc')
        assert docs and any("gold" in d.text for d in docs)

        # rank by keyboard: candidate #3 up twice, then #2 down once by button
        assert order() == [0, 1, 2]  # the critic's order (.5, 0, 0)
        third = browser.find_element(
            By.CSS_SELECTOR, '.step[data-step="0"] .candidate[data-index="2"]'
        )
        third.send_keys(Keys.ARROW_UP)
        browser.switch_to.active_element.send_keys(Keys.ARROW_UP)
        assert order() == [2, 0, 1]
        browser.find_element(By.CSS_SELECTOR, '.step[data-step="0"] .save-rank').click()
        saved("ranked #3 > #1 > #2")
        shot(browser, "1-browse-rank")

        # a good/bad mark with a note on a step with one action
        open_episode(2)
        step = browser.find_element(By.CSS_SELECTOR, '.step[data-step="0"]')
        step.find_element(By.CSS_SELECTOR, ".note").send_keys("right page")
        step.find_element(By.CSS_SELECTOR, ".mark-good").click()
        saved("the action good")
        shot(browser, "2-browse-mark")

        # reload: both judgements are shown again
        load()
        open_episode(0)
        assert order() == [2, 0, 1]
        assert (
            "ann: ranked #3 > #1 > #2"
            in browser.find_element(By.CSS_SELECTOR, '.step[data-step="0"] .judgements').text
        )
        open_episode(2)
        step = browser.find_element(By.CSS_SELECTOR, '.step[data-step="0"]')
        assert "on-good" in step.find_element(By.CSS_SELECTOR, ".mark-good").get_attribute("class")
        assert step.find_element(By.CSS_SELECTOR, ".note").get_attribute("value") == "right page"

        # export DPO rows: candidate 3 against candidates 1 and 2
        browser.find_element(By.CSS_SELECTOR, '#tabs [data-view="export"]').click()
        Select(browser.find_element(By.ID, "export-format")).select_by_value("dpo")
        browser.find_element(By.ID, "export-run").click()
        wait.until(lambda d: d.find_element(By.ID, "export-count").text == "2 dpo rows")
        shot(browser, "4-export")
        rows = get(url + "/api/export?format=dpo")["rows"]
        texts = [c.text for c in records[0].steps[0].candidates]
        assert {r["chosen"][0]["content"] for r in rows} == {texts[2]}
        assert sorted(r["rejected"][0]["content"] for r in rows) == sorted(texts[:2])
        assert all(r["meta"]["annotator"] == "ann" and r["prompt"] for r in rows)

        # a hand-built agreement case: bob ranks 0>2>1 and marks as below
        base = {"annotator": "bob", "file": 0}
        post(
            url + "/api/annotations",
            {**base, "episode": 0, "step": 0, "kind": "rank", "order": [0, 2, 1]},
        )
        for who, labels in (("ann", "ggb"), ("bob", "gbb")):
            for candidate, label in enumerate(labels):
                post(url + "/api/annotations", {
                    **base, "annotator": who, "episode": 1, "step": 0, "kind": "mark",
                    "candidate": candidate, "label": "good" if label == "g" else "bad",
                })  # fmt: skip
        post(
            url + "/api/annotations",
            {**base, "episode": 2, "step": 0, "kind": "mark", "label": "bad"},
        )
        browser.find_element(By.CSS_SELECTOR, '#tabs [data-view="agree"]').click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#agree-people tr td"))
        cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#agree-people tr td")]
        # rankings: 2 of 3 pairs; marks at episode 1: only (0, 2) comparable, agreed -> 3/4.
        # kappa over 4 marks: ann g g b g, bob g b b b: p_o = .5, p_e = .375 -> .2
        assert cells == ["ann", "bob", "0.750", "4", "2", "0.200", "0.500", "4"]
        shot(browser, "3-agreement")

        # ask: the scripted agent's steps arrive one by one; the saved episode can be judged
        browser.find_element(By.CSS_SELECTOR, '#tabs [data-view="ask"]').click()
        browser.find_element(By.ID, "ask-question").send_keys(
            "The Eiffel Tower is in which country?"
        )
        browser.find_element(By.ID, "ask-answer").send_keys("France")
        browser.find_element(By.ID, "ask-run").click()
        wait.until(lambda d: d.find_element(By.ID, "ask-state").text == "done in 2 steps")
        steps = browser.find_elements(By.CSS_SELECTOR, "#ask-steps li")
        assert [s.text.split("\n")[0] for s in steps] == ["search: Eiffel Tower", "answer: France"]
        assert browser.find_element(By.ID, "ask-final").text == "Answer: France"
        shot(browser, "5-ask")
        browser.find_element(By.ID, "ask-save").click()
        wait.until(
            lambda d: d.find_element(By.ID, "episode-pane").get_attribute("data-episode") == "1/0"
        )
        browser.find_element(By.CSS_SELECTOR, '.step[data-step="1"] .mark-good').click()
        saved("the action good")
        shot(browser, "6-asked-episode")
    assert len((tmp_path / "asked.jsonl").read_text().splitlines()) == 1
    assert len((tmp_path / "ann.jsonl").read_text().splitlines()) == 11
