"""The documentation site builds in strict mode, with a page per environment id and an API
reference rendered from the docstrings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raggym_env.registration import ENV_IDS

ROOT = Path(__file__).resolve().parents[1]
ENV_PAGES = {
    "RAGGym/HotpotQA-v0": "hotpotqa",
    "RAGGym/2WikiMultihopQA-v0": "2wikimultihopqa",
    "RAGGym/Bamboogle-v0": "bamboogle",
    "RAGGym/MedQA-v0": "medqa",
    "RAGGym/Custom-v0": "custom",
}


def _plain(html: str) -> str:
    """The page's text without tags, whitespace collapsed (for content checks)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mkdocs build --strict`` of the repository's site into a temporary folder."""
    out = tmp_path_factory.mktemp("docs") / "site"
    # No RAGGYM_DOCS_SRC: the reference reads the working tree through docs/_src, as a
    # user's `mkdocs build` does whatever the install (editable, as here, included).
    env = {k: v for k, v in os.environ.items() if k != "RAGGYM_DOCS_SRC"}
    env["NO_MKDOCS_2_WARNING"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_src_links_lay_out_the_installed_names():
    """docs/_src maps each folder to its installed import name, for mkdocstrings."""
    for folder, name in {
        "raggym_env": "raggym_env",
        "agents": "raggym/agents",
        "trainers": "raggym/trainers",
        "benchmarks": "raggym/benchmarks",
        "testing": "raggym/testing",
    }.items():
        link = ROOT / "docs" / "_src" / name
        assert link.is_symlink() and link.resolve() == ROOT / folder


def test_every_registered_id_has_a_page_in_the_nav():
    assert set(ENV_PAGES) == set(ENV_IDS)
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for env_id, page in ENV_PAGES.items():
        assert f"{env_id}: environments/{page}.md" in config
    assert "fidelity.md" in config and (ROOT / "docs" / "fidelity.md").exists()


def test_environment_pages_are_gymnasium_style(site):
    for env_id, page in ENV_PAGES.items():
        text = _plain((site / "environments" / page / "index.html").read_text(encoding="utf-8"))
        assert env_id in text
        for section in (
            "Description",
            "Action space",
            "Observation space",
            "Rewards",
            "Episode end",
            "Arguments",
            "Version history",
        ):
            assert section in text, (page, section)
        assert "ActionSpace(max_length=8192)" in text and "steps_remaining" in text
        assert "v0: initial release" in text
    medqa = _plain((site / "environments" / "medqa" / "index.html").read_text(encoding="utf-8"))
    assert "accuracy" in medqa and "PlaceholderCorpusWarning" in medqa


def test_api_reference_renders_the_docstrings(site):
    env = _plain((site / "reference" / "env" / "index.html").read_text(encoding="utf-8"))
    assert "RAGEnv" in env and "Multi-hop question answering with a search tool" in env
    assert "register_envs" in env and "RewardConfig" in env
    rollout = _plain((site / "reference" / "rollout" / "index.html").read_text(encoding="utf-8"))
    assert "BatchedRunner" in rollout and "show_progress" in rollout
    testing = _plain((site / "reference" / "testing" / "index.html").read_text(encoding="utf-8"))
    assert "ScriptedLLM" in testing and "make_tiny_env" in testing
    for page in ("agents", "llm", "trainers", "benchmarks", "retrieval", "utilities"):
        html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
        assert 'class="doc doc-object' in html, page  # mkdocstrings rendered objects


def test_home_links_the_guide_the_environments_and_the_fidelity_page(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for target in ("getting-started/", "environments/", "fidelity/", "reference/"):
        assert f'href="{target}"' in home, target
    fidelity = _plain((site / "fidelity" / "index.html").read_text(encoding="utf-8"))
    assert "rag-gym" in fidelity
