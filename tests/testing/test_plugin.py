"""The pytest plugin and the kit's entry points cost nothing until used."""

import subprocess
import sys


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_loading_the_plugin_imports_neither_the_env_nor_the_agents():
    loaded = run(
        "import sys, raggym.testing.pytest_plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith(('raggym', 'gymnasium'))))"
    )
    assert loaded == "['raggym', 'raggym.testing', 'raggym.testing.pytest_plugin']"


def test_fake_retriever_is_available_by_name_without_importing_the_kit():
    out = run(
        "import sys\n"
        "from raggym_env import Corpus, Document\n"
        "from raggym_env.retrieval.factory import make_retriever\n"
        "assert 'raggym.testing' not in sys.modules\n"
        "retriever = make_retriever('fake', Corpus([Document('a', 'Paris', 'France')]))\n"
        "print(type(retriever).__module__, retriever.search(['paris'], 1)[0][0].document.id)"
    )
    assert out == "raggym.testing.retriever a"


def test_kit_names_resolve_lazily():
    import raggym.testing as kit

    assert set(kit.__all__) <= set(dir(kit))
    for name in kit.__all__:
        assert getattr(kit, name) is not None, name
