"""Render a benchmark run as ONE self-contained HTML file: header, leaderboard, episode browser.

The page has no external assets (inline CSS and vanilla JavaScript, works from ``file://``
offline; charts are PNG ``data:`` URIs). The run's data is embedded as JSON in a
``<script type="application/json">`` element with every ``<`` escaped, so no question, model
output or document can close the element; the script inserts all text with ``textContent``,
never as markup, and a Content Security Policy forbids loading anything. Episodes are
embedded compactly: step prompts and other free-form extras are left out, long model outputs
and document texts are shortened, and each retrieved document's text is stored once per
dataset.

Besides the tables the page shows the leaderboard chart, per-dataset per-step analysis plots
(see :mod:`raggym.benchmarks.step_analysis`), the 95% interval beside each mean that has one,
and the configuration that produced each cell. The plots need matplotlib (``pip install
'raggym[report]'``); without it the page says so and shows everything else.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from raggym.benchmarks.charts import plot_leaderboard
from raggym.benchmarks.leaderboard import CellResult, Episodes, Leaderboard
from raggym.benchmarks.step_analysis import (
    evidence_recall_by_step,
    outcome_breakdown,
    plot_step_analysis,
    searches_per_question,
)
from raggym.benchmarks.tables import (
    DURATION_KEYS,
    Table,
    finite,
    format_metric,
    full_table,
    run_header,
    summary_table,
)
from raggym_env.availability import install_hint
from raggym_env.episode import EpisodeRecord, StepRecord
from raggym_env.types import Document

__all__ = [
    "DocumentTexts",
    "cell_configurations",
    "document_texts",
    "episode_status",
    "render_html",
    "report_data",
]

_RAW_LIMIT = 4000
_CANDIDATE_LIMIT = 2000
_DOC_TEXT_LIMIT = 4000

DocumentTexts = Mapping[str, Mapping[str, str]]
"""Retrieved documents' texts: dataset -> document id -> text."""

_SEED_LABEL = re.compile(r"^(?P<name>.*)@seed(?P<seed>-?\d+)$")


class _DocumentSource(Protocol):
    """What :func:`document_texts` reads texts from: a corpus (``get`` by document id)."""

    def get(self, doc_id: str) -> Document: ...


def _clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (with a marker), or ``None``."""
    if text is None:
        return None
    text = str(text)
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit:,} more characters]"


def _number(value: Any, digits: int = 4) -> float | int | None:
    """A JSON-safe rounded number (``None`` for missing or non-finite values)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return None
    rounded = round(float(value), digits)
    return int(rounded) if rounded.is_integer() else rounded


def episode_status(record: EpisodeRecord, multiple_choice: bool) -> str:
    """``failed`` (it crashed), ``correct`` (EM or, for MC, accuracy is 1) or ``wrong``."""
    if record.error is not None:
        return "failed"
    score = record.metrics.get("accuracy" if multiple_choice else "em")
    return "correct" if score is not None and float(score) == 1.0 else "wrong"


def _chosen(step: StepRecord) -> int | None:
    """Index of the candidate the agent followed: ``extra["chosen"]``, else the matching one."""
    chosen = step.extra.get("chosen")
    if isinstance(chosen, int) and not isinstance(chosen, bool):
        return chosen if 0 <= chosen < len(step.candidates) else None
    for i, candidate in enumerate(step.candidates):
        if candidate.action == step.action:
            return i
    return None


def _step_data(step: StepRecord, gold_titles: set[str], gold_ids: set[str]) -> dict[str, Any]:
    """One step, compactly: keys with nothing to say are left out."""
    data: dict[str, Any] = {"t": step.action_type, "x": step.action.get("text")}
    if step.raw_text is not None and step.raw_text != step.action.get("text"):
        data["raw"] = _clip(step.raw_text, _RAW_LIMIT)
    if step.action_error:
        data["aerr"] = step.action_error
    if step.retrieved:
        data["docs"] = [
            [
                doc.title or doc.id,
                _number(doc.score, 3),
                int(doc.title in gold_titles or doc.id in gold_ids),
                doc.id,
            ]
            for doc in step.retrieved
        ]
    optional = {
        "rec": _number(step.evidence_recall, 3),
        "lat": _number(step.latency_s, 6),
        "tok": sum(step.tokens.values()) or None,
        "r": _number(step.reward, 3),
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    if step.candidates:
        candidates = []
        for candidate in step.candidates:
            action = candidate.action or {}
            entry = {
                "text": _clip(candidate.text, _CANDIDATE_LIMIT),
                "t": action.get("type"),
                "x": action.get("text"),
                "s": _number(candidate.score),
                "by": candidate.scorer,
                "err": candidate.error,
                "out": _clip(candidate.scorer_output, _CANDIDATE_LIMIT),
            }
            candidates.append({k: v for k, v in entry.items() if v is not None})
        data["cands"] = candidates
        chosen = _chosen(step)
        if chosen is not None:
            data["ch"] = chosen
    return data


def _episode_data(record: EpisodeRecord, group: int, multiple_choice: bool) -> dict[str, Any]:
    """One episode for the browser: question, outcome, metrics and its steps."""
    gold = record.gold
    gold_titles = {str(t) for t in gold.get("evidence_titles") or []}
    gold_ids = {str(i) for i in gold.get("evidence_doc_ids") or []}
    if record.error is not None:
        end = "failed"
    elif record.terminated:
        end = "answered"
    else:
        end = "truncated" if record.truncated else "unfinished"
    data: dict[str, Any] = {
        "g": group,
        "id": record.example_id,
        "q": record.question,
        "ans": record.final_answer,
        "gold": [str(a) for a in gold.get("answers") or []],
        "st": episode_status(record, multiple_choice),
        "end": end,
        "m": {
            k: v for k, v in ((k, _number(v)) for k, v in record.metrics.items()) if v is not None
        },
        "steps": [_step_data(step, gold_titles, gold_ids) for step in record.steps],
    }
    optional = {
        "opt": record.options or None,
        "letter": gold.get("answer_letter"),
        "ev": list(dict.fromkeys(str(t) for t in gold.get("evidence_titles") or [])) or None,
        "err": record.error,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return data


def _table_data(table: Table) -> dict[str, Any]:
    """A :class:`Table` as JSON-ready lists."""
    return {
        "columns": list(table.columns),
        "keys": list(table.keys),
        "rows": [list(row) for row in table.rows],
        "numeric": list(table.numeric),
        "best": sorted([r, c] for r, c in table.best),
    }


def _with_interval(key: str, text: str, cell: CellResult | None) -> str:
    """``text`` followed by the cell's 95% interval for ``key`` (``0.412 [0.381, 0.443]``)."""
    if cell is None or text == "-" or key not in cell.ci95:
        return text
    lo, hi = cell.ci95[key]
    return f"{text} [{format_metric(key, lo)}, {format_metric(key, hi)}]"


def _duration_unit(values: Sequence[float | None]) -> tuple[str, float]:
    """The unit a latency column reads in (``s`` when some value is 1 s or more, else ``ms``)."""
    known = [v for v in values if v is not None]
    return ("s", 1.0) if any(v >= 1.0 for v in known) else ("ms", 1000.0)


def _full_table_data(leaderboard: Leaderboard) -> dict[str, Any]:
    """The full table with intervals beside means and each latency column in its labelled unit.

    Every latency column is written in one unit, the one its title names (``ms/q p50`` or
    ``s/q p50``): the values are plain numbers, so a title and its values never disagree.
    """
    table = _table_data(full_table(leaderboard))
    cells = leaderboard.cells
    for c, key in enumerate(table["keys"]):
        if key in DURATION_KEYS:
            values = [finite(cell.metrics.get(key)) for cell in cells]
            unit, scale = _duration_unit(values)
            table["columns"][c] = unit + "/" + table["columns"][c].split("/", 1)[-1]
            for row, value in zip(table["rows"], values, strict=True):
                if value is None:
                    row[c] = "-"
                else:
                    scaled = value * scale
                    row[c] = f"{scaled:,.3f}" if scaled < 1.0 else f"{scaled:,.2f}"
        elif key == "wall_s":
            for row, cell in zip(table["rows"], cells, strict=True):
                value = finite(cell.metrics.get(key))
                row[c] = "-" if value is None else f"{value:,.2f}"
        else:
            for row, cell in zip(table["rows"], cells, strict=True):
                row[c] = _with_interval(key, row[c], cell)
    return table


def _summary_table_data(leaderboard: Leaderboard) -> dict[str, Any]:
    """The summary table with each cell's 95% interval beside its mean."""
    table = _table_data(summary_table(leaderboard))
    by_key = leaderboard.by_key()
    for row in table["rows"]:
        agent = row[0]
        for c, column in enumerate(table["keys"]):
            dataset, _, key = column.partition(":")
            if key:
                row[c] = _with_interval(key, row[c], by_key.get((dataset, agent)))
    return table


def document_texts(
    records: Sequence[EpisodeRecord], corpus: _DocumentSource, limit: int = _DOC_TEXT_LIMIT
) -> dict[str, str]:
    """The text of every document ``records`` retrieved, by id, looked up in ``corpus``.

    Texts longer than ``limit`` characters are shortened; ids the corpus lacks are left out
    (the report then shows the title alone).
    """
    texts: dict[str, str] = {}
    for record in records:
        for step in record.steps:
            for doc in step.retrieved:
                if doc.id in texts:
                    continue
                try:
                    found = corpus.get(doc.id)
                except (KeyError, IndexError, ValueError):
                    continue
                text = _clip(getattr(found, "text", None), limit)
                if text is not None:
                    texts[doc.id] = text
    return texts


def _describe(value: Any) -> str:
    """A compact one-line rendering of a configuration value."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_describe(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_describe(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _named(entries: Any, name: str) -> Mapping[str, Any]:
    """The entry called ``name`` in a suite's list of dataset or agent mappings, or ``{}``."""
    if isinstance(entries, Sequence) and not isinstance(entries, (str, bytes)):
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                return entry
    return {}


def cell_configurations(
    leaderboard: Leaderboard, episodes: Episodes | None = None
) -> list[dict[str, str]]:
    """The configuration that produced each cell's episodes, one mapping per cell.

    Read from the suite the run recorded (its dataset and agent entries, retriever, ``k``,
    step budget, LLM, protocol) and from the episodes themselves (environment id, seeds).
    Keys: ``dataset``, ``agent``, ``agent config``, ``retriever``, ``k``, ``max steps``,
    ``LLM``, ``seed``, ``env``; a value the run did not record reads ``-``.
    """
    suite = leaderboard.suite
    episodes = episodes or {}
    keys = list(dict.fromkeys([*(c.key for c in leaderboard.cells), *episodes]))
    rows: list[dict[str, str]] = []
    for dataset, agent in keys:
        match = _SEED_LABEL.match(agent)
        agent_name = match.group("name") if match else agent
        data_entry = _named(suite.get("datasets"), dataset)
        agent_entry = _named(suite.get("agents"), agent_name)
        records = episodes.get((dataset, agent), ())
        spec = []
        if agent_entry.get("agent"):
            spec.append(str(agent_entry["agent"]))
        for key in ("critic", "n"):
            if agent_entry.get(key) is not None:
                spec.append(f"{key}={agent_entry[key]}")
        if agent_entry.get("options"):
            spec.append(_describe(agent_entry["options"]))
        if suite.get("protocol") not in (None, "", "raggym"):
            spec.append(f"protocol={suite['protocol']}")
        retriever = data_entry.get("retriever") or suite.get("retriever")
        options = data_entry.get("retriever_options") or suite.get("retriever_options")
        retriever_text = _describe(retriever)
        if options:
            retriever_text += f" ({_describe(options)})"
        if match:
            seed = match.group("seed")
        else:
            seeds = suite.get("seeds")
            seed = _describe(seeds) if seeds else "-"
        if seed == "-":
            recorded = sorted({r.seed for r in records if r.seed is not None})
            if len(recorded) == 1:
                seed = str(recorded[0])
            elif recorded:
                seed = f"{recorded[0]}..{recorded[-1]}"
        env_ids = sorted({r.env_id for r in records})
        llm = suite.get("llm")
        llm_spec = llm.get("spec") if isinstance(llm, Mapping) else None
        rows.append(
            {
                "dataset": dataset,
                "agent": agent,
                "agent config": " ".join(spec) or "-",
                "retriever": retriever_text,
                "k": _describe(suite.get("k")),
                "max steps": _describe(suite.get("max_steps")),
                "LLM": leaderboard.llm or llm_spec or "none",
                "seed": seed,
                "env": ", ".join(env_ids) or "-",
            }
        )
    return rows


def _png_uri(data: bytes) -> str:
    """PNG bytes as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _leaderboard_png(leaderboard: Leaderboard) -> bytes:
    """The leaderboard's bar chart (the same figure as ``leaderboard.png``)."""
    buffer = io.BytesIO()
    plot_leaderboard(leaderboard, buffer)
    return buffer.getvalue()


def _figure(draw: Callable[[], bytes], what: str) -> tuple[str | None, str | None]:
    """``(data URI, None)`` for a drawn figure, or ``(None, why not)`` when it cannot be drawn."""
    try:
        return _png_uri(draw()), None
    except ImportError:
        return None, f"The {what} needs matplotlib: {install_hint('matplotlib')}"
    except Exception as exc:  # noqa: BLE001 - a failed plot costs the figure, not the report
        return None, f"The {what} could not be drawn ({type(exc).__name__}: {exc})"


def _analysis(
    leaderboard: Leaderboard,
    episodes: Episodes,
    groups: Sequence[Sequence[Any]],
    charts: bool,
) -> dict[str, Any]:
    """Chart, per-dataset step analysis (numbers, and plots when ``charts``) for the page."""
    chart, chart_note = (None, None)
    if charts and leaderboard.cells:
        chart, chart_note = _figure(lambda: _leaderboard_png(leaderboard), "leaderboard chart")
    datasets: list[dict[str, Any]] = []
    for dataset in dict.fromkeys(str(g[0]) for g in groups):
        members = [g for g in groups if g[0] == dataset]
        cells = {str(g[1]): list(episodes.get((dataset, str(g[1])), ())) for g in members}
        if not any(cells.values()):
            continue
        mc = bool(members[0][2])
        entry: dict[str, Any] = {
            "dataset": dataset,
            "agents": [
                {
                    "agent": agent,
                    "n": len(records),
                    "recall": [_number(v, 3) for v in evidence_recall_by_step(records)],
                    "searches": [[k, v] for k, v in searches_per_question(records).items()],
                    "outcomes": outcome_breakdown(records, mc),
                }
                for agent, records in cells.items()
            ],
        }
        if charts:
            image, note = _figure(
                functools.partial(plot_step_analysis, dataset, cells, mc),
                "per-step analysis plot",
            )
            entry.update({k: v for k, v in (("img", image), ("note", note)) if v is not None})
        datasets.append(entry)
    data: dict[str, Any] = {"datasets": datasets}
    if chart is not None:
        data["chart"] = chart
    if chart_note is not None:
        data["chart_note"] = chart_note
    return data


def report_data(
    leaderboard: Leaderboard,
    episodes: Episodes,
    *,
    documents: DocumentTexts | None = None,
    charts: bool = True,
) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready mapping (what :func:`render_html` embeds).

    Keys: ``header`` (``[label, value]`` pairs), ``configs`` (:func:`cell_configurations`),
    ``summary`` and ``full`` (the tables of :mod:`raggym.benchmarks.tables`, intervals beside
    means), ``groups`` (``[dataset, agent, multiple_choice]`` per cell), ``episodes`` (each
    with ``g``, the index of its group), ``texts`` (dataset -> document id -> text) and
    ``analysis`` (chart and per-step analysis; images only when ``charts``).
    """
    cells = leaderboard.cells
    mc = {c.key: c.multiple_choice for c in cells}
    keys = list(dict.fromkeys([*mc, *episodes]))
    groups: list[list[Any]] = []
    items: list[dict[str, Any]] = []
    for dataset, agent in keys:
        records: Sequence[EpisodeRecord] = episodes.get((dataset, agent), ())
        if (dataset, agent) in mc:
            multiple_choice = mc[(dataset, agent)]
        else:
            multiple_choice = any(r.options for r in records)
        group = len(groups)
        groups.append([dataset, agent, multiple_choice])
        items += [_episode_data(record, group, multiple_choice) for record in records]
    texts = {
        str(dataset): {str(i): _clip(str(t), _DOC_TEXT_LIMIT) or "" for i, t in by_id.items()}
        for dataset, by_id in (documents or {}).items()
    }
    return {
        "header": [list(pair) for pair in run_header(leaderboard)],
        "configs": cell_configurations(leaderboard, episodes),
        "summary": _summary_table_data(leaderboard) if cells else None,
        "full": _full_table_data(leaderboard),
        "groups": groups,
        "episodes": items,
        "texts": texts,
        "analysis": _analysis(leaderboard, episodes, groups, charts),
    }


def _embed(data: Mapping[str, Any]) -> str:
    """Compact JSON safe inside a ``<script>`` element: every ``<`` becomes a JSON escape."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def render_html(
    leaderboard: Leaderboard,
    episodes: Episodes,
    *,
    documents: DocumentTexts | None = None,
    charts: bool = True,
) -> str:
    """The run as one self-contained HTML page (no network, opens from ``file://``).

    Args:
        leaderboard: the run's leaderboard.
        episodes: the episode records by ``(dataset, agent)`` for the episode browser.
        documents: retrieved documents' texts by dataset and id (see :func:`document_texts`),
            shown under each retrieved title; without them the titles alone are shown.
        charts: embed the leaderboard chart and per-step plots (they need matplotlib).

    Returns:
        The HTML document.
    """
    data = report_data(leaderboard, episodes, documents=documents, charts=charts)
    suite = leaderboard.suite_name or "benchmark"
    return (
        _TEMPLATE.replace("__TITLE__", html.escape(f"{suite}: RAGGym benchmark report"))
        .replace("__STYLE__", _STYLE)
        .replace("__SCRIPT__", _SCRIPT)
        .replace("__DATA__", _embed(data))
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>__TITLE__</title>
<link rel="icon" href="data:,">
<style>__STYLE__</style>
</head>
<body>
<header id="run-header"></header>
<main>
<noscript><p class="note">The leaderboard and episode browser need JavaScript.</p></noscript>
<section id="summary-section" hidden>
<h2>Summary</h2>
<p class="note">EM/F1 for open QA, accuracy for multiple choice; averages divide by the
selected questions, so failed items count 0. Best value per column in bold.</p>
<div class="scroll"><table id="summary"></table></div>
</section>
<section id="chart-section">
<h2>Chart</h2>
<div id="chart-box" class="figure"></div>
</section>
<section>
<h2>All metrics</h2>
<p class="note">One row per dataset &times; agent. Click a row to browse its episodes.
Means are followed by their 95% interval [lo, hi] where the run recorded one; latency
columns read in the unit their title names.</p>
<div class="scroll"><table id="leaderboard"></table></div>
</section>
<section id="analysis">
<h2>Per-step analysis</h2>
<p class="note">Per dataset: mean gold-evidence recall after each step (an episode that ended
keeps its final recall), how many searches each question made, and where answers go wrong:
<strong>correct</strong>; <strong>wrong, evidence found</strong> (every gold evidence title
was retrieved); <strong>wrong, evidence missed</strong> (some never was);
<strong>wrong</strong> (no evidence labels); <strong>no answer</strong> (step budget spent);
<strong>failed</strong> (the episode crashed).</p>
<div id="analysis-box"></div>
</section>
<section id="browser">
<h2>Episodes</h2>
<div class="filters">
<label>Dataset <select id="filter-dataset"><option value="">all</option></select></label>
<label>Agent <select id="filter-agent"><option value="">all</option></select></label>
<label>Outcome <select id="filter-status">
<option value="all">all</option><option value="correct">correct</option>
<option value="wrong">wrong</option><option value="failed">failed</option>
</select></label>
<label class="grow">Search <input id="filter-search" type="search"
 placeholder="words in the question or its id" autocomplete="off"></label>
<button type="button" id="filter-reset">Reset</button>
</div>
<p class="counter"><span id="episode-count">0</span> of <span id="episode-total">0</span>
episodes match <span id="episode-shown"></span></p>
<div id="episodes"></div>
<button type="button" id="show-more" hidden>Show more</button>
</section>
</main>
<script type="application/json" id="report-data">__DATA__</script>
<script>__SCRIPT__</script>
</body>
</html>
"""

_STYLE = """
:root {
  --bg: #f7f7f9; --fg: #1d1f24; --muted: #5f6672; --card: #fff; --line: #dfe2e8;
  --accent: #2f6fde; --ok: #1b8a4b; --ok-bg: #e3f5ea; --bad: #b7372f; --bad-bg: #fbe7e5;
  --warn: #9a5b00; --warn-bg: #fff1d6; --gold-bg: #fff4c2; --chip: #eef1f6; --mono: ui-monospace,
  SFMono-Regular, Menlo, Consolas, monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #16181d; --fg: #e4e6eb; --muted: #9aa1ad; --card: #1f2229; --line: #343842;
    --accent: #7aa7ff; --ok: #5fd08f; --ok-bg: #193526; --bad: #ff8a80; --bad-bg: #3d1f1d;
    --warn: #ffc46b; --warn-bg: #3a2c12; --gold-bg: #4a4016; --chip: #2a2e37;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header#run-header { background: var(--card); border-bottom: 1px solid var(--line);
  padding: 18px 28px 14px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .description { margin: 0 0 10px; color: var(--muted); max-width: 70em; }
header dl { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; }
header dl div { display: flex; gap: 6px; }
header dt { color: var(--muted); }
header dd { margin: 0; font-family: var(--mono); font-size: 13px; }
main { padding: 8px 28px 40px; max-width: 1500px; }
h2 { font-size: 17px; margin: 26px 0 6px; }
.note { color: var(--muted); margin: 0 0 8px; font-size: 13px; }
.scroll { overflow-x: auto; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
th { background: var(--chip); font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: 700; }
td.bad { color: var(--bad); font-weight: 600; }
tbody tr:last-child td { border-bottom: none; }
#leaderboard tbody tr { cursor: pointer; }
#leaderboard tbody tr:hover, #summary tbody tr:hover { background: var(--chip); }
.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: end;
  background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.filters label { display: flex; flex-direction: column; gap: 3px; font-size: 12px;
  color: var(--muted); }
.filters label.grow { flex: 1 1 240px; }
select, input, button { font: inherit; color: var(--fg); background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; padding: 5px 8px; }
button { cursor: pointer; }
button:hover { border-color: var(--accent); }
.counter { margin: 10px 2px; color: var(--muted); }
#episode-count { font-weight: 700; color: var(--fg); }
.episode { background: var(--card); border: 1px solid var(--line); border-left-width: 4px;
  border-radius: 8px; margin: 0 0 8px; }
.episode.st-correct { border-left-color: var(--ok); }
.episode.st-wrong { border-left-color: var(--warn); }
.episode.st-failed { border-left-color: var(--bad); }
.episode-head { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; width: 100%;
  text-align: left; border: 0; border-radius: 8px; background: transparent; padding: 9px 12px; }
.episode-head:hover { background: var(--chip); }
.episode-head .badges { grid-row: span 2; display: flex; flex-direction: column; gap: 4px;
  align-items: flex-start; }
.episode-question { font-weight: 600; overflow-wrap: anywhere; }
.episode:not(.open) .episode-question { display: -webkit-box; -webkit-box-orient: vertical;
  -webkit-line-clamp: 2; overflow: hidden; }
.episode-meta { color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
.badge { display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.badge.correct { background: var(--ok-bg); color: var(--ok); }
.badge.wrong { background: var(--warn-bg); color: var(--warn); }
.badge.failed, .badge.error { background: var(--bad-bg); color: var(--bad); }
.tag { display: inline-block; background: var(--chip); border-radius: 4px; padding: 0 6px;
  margin-right: 6px; font-size: 12px; color: var(--muted); font-weight: 500; }
.episode-body { border-top: 1px solid var(--line); padding: 10px 14px 14px; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 6px 0; }
.kv dt { color: var(--muted); }
.kv dd { margin: 0; overflow-wrap: anywhere; }
.chip { display: inline-block; background: var(--chip); border-radius: 4px; padding: 0 6px;
  margin: 0 6px 3px 0; }
.chip.found { background: var(--gold-bg); }
.options { margin: 4px 0 8px; padding-left: 0; list-style: none; }
.options li { padding: 1px 6px; border-radius: 4px; }
.options li.gold { background: var(--ok-bg); }
.options li.picked:not(.gold) { background: var(--bad-bg); }
ol.steps { list-style: none; padding: 0; margin: 8px 0; }
.step { border: 1px solid var(--line); border-radius: 6px; padding: 7px 10px; margin: 0 0 6px; }
.step-head { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; }
.step-no { color: var(--muted); font-variant-numeric: tabular-nums; }
.action { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
  border-radius: 4px; padding: 1px 6px; }
.action.search { background: #dbe7ff; color: #1d4aa8; }
.action.answer { background: var(--ok-bg); color: var(--ok); }
.action.invalid { background: var(--bad-bg); color: var(--bad); }
@media (prefers-color-scheme: dark) { .action.search { background: #1f2f52; color: #9dbcff; } }
.step-text { font-weight: 600; overflow-wrap: anywhere; }
.step-meta { color: var(--muted); font-size: 12px; margin-left: auto; }
.step-error { color: var(--bad); margin: 4px 0; }
pre { background: var(--chip); border-radius: 6px; padding: 6px 8px; margin: 4px 0;
  white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.4 var(--mono); max-height: 22em;
  overflow: auto; }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
ol.docs { margin: 6px 0 0; padding-left: 26px; }
.doc { padding: 0 4px; border-radius: 4px; }
.doc.gold { background: var(--gold-bg); font-weight: 600; }
.doc .doc-score { color: var(--muted); font-size: 12px; margin-left: 8px;
  font-variant-numeric: tabular-nums; }
.doc.gold .doc-title::after { content: " \\2605 gold"; font-size: 11px; color: var(--warn); }
table.candidates { margin-top: 6px; border: 1px solid var(--line); }
table.candidates td { white-space: normal; vertical-align: top; }
tr.candidate.chosen { background: var(--ok-bg); }
tr.candidate.chosen td:first-child::after { content: " \\2714 chosen"; color: var(--ok);
  font-weight: 700; font-size: 11px; }
.final { border-top: 1px dashed var(--line); margin-top: 8px; padding-top: 6px; }
#show-more { display: block; margin: 10px auto; }
.figure { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 8px; overflow-x: auto; }
.figure img.plot { display: block; max-width: 100%; height: auto; margin: 0 auto;
  background: #fff; }
.figure:empty { display: none; }
.analysis-dataset h3 { font-size: 15px; margin: 16px 0 6px; }
.analysis-dataset .scroll { margin-top: 6px; }
header details.configs { margin-top: 10px; }
header details.configs summary { font-size: 13px; }
header table.configs { font-size: 12px; }
header table.configs td { font-family: var(--mono); }
.doc-details summary { color: var(--fg); font-size: 14px; list-style: none; }
.doc-details summary::-webkit-details-marker { display: none; }
.doc-details summary::before { content: "\\25B8"; display: inline-block; width: 1.1em;
  color: var(--muted); }
.doc-details[open] summary::before { content: "\\25BE"; }
#chart-box img.plot { max-width: min(100%, 900px); }
.doc-details .doc-text { font-weight: 400; white-space: pre-wrap; overflow-wrap: anywhere;
  background: var(--card); border-left: 3px solid var(--line); margin: 2px 0 6px;
  padding: 4px 10px; font-size: 13px; max-height: 18em; overflow: auto; }
.empty { color: var(--muted); padding: 16px; text-align: center; background: var(--card);
  border: 1px dashed var(--line); border-radius: 8px; }
"""

_SCRIPT = r"""
(function () {
  'use strict';
  var DATA = JSON.parse(document.getElementById('report-data').textContent);
  var PAGE = 100;
  var groups = DATA.groups;
  var episodes = DATA.episodes;
  var open = new Set();
  var limit = PAGE;

  function node(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function num(v, digits) {
    if (v === undefined || v === null) { return '-'; }
    return Number.isInteger(v) ? String(v) : v.toFixed(digits === undefined ? 3 : digits);
  }
  function duration(s) {
    if (s >= 1) { return s.toFixed(2) + ' s'; }
    var ms = s * 1000;
    return (ms >= 1 ? ms.toFixed(1) : ms.toFixed(3)) + ' ms';
  }
  function shorten(text, n) {
    text = String(text);
    return text.length <= n ? text : text.slice(0, n - 1) + '\u2026';
  }

  // ---- header ----------------------------------------------------------------------------
  function renderHeader() {
    var box = document.getElementById('run-header');
    var fields = {};
    DATA.header.forEach(function (pair) { fields[pair[0]] = pair[1]; });
    add(box, node('h1', null, 'Benchmark: ' + (fields.suite || 'unnamed suite')));
    if (fields.description) { add(box, node('p', 'description', fields.description)); }
    var dl = add(box, node('dl'));
    ['created', 'raggym', 'git', 'python', 'LLM'].forEach(function (label) {
      if (!(label in fields)) { return; }
      var item = add(dl, node('div'));
      add(item, node('dt', null, label));
      add(item, node('dd', null, fields[label]));
    });
    var item = add(dl, node('div'));
    add(item, node('dt', null, 'episodes'));
    add(item, node('dd', null, String(episodes.length)));
    if (DATA.configs && DATA.configs.length) {
      var details = add(box, node('details', 'configs'));
      details.open = true;
      add(details, node('summary', null, 'Configuration of each cell'));
      var scroll = add(details, node('div', 'scroll'));
      var table = add(scroll, node('table', 'configs'));
      table.id = 'configs';
      var columns = Object.keys(DATA.configs[0]);
      var hr = add(add(table, node('thead')), node('tr'));
      columns.forEach(function (c) { add(hr, node('th', null, c)); });
      var body = add(table, node('tbody'));
      DATA.configs.forEach(function (row) {
        var tr = add(body, node('tr'));
        columns.forEach(function (c) { add(tr, node('td', null, row[c])); });
      });
    }
  }

  // ---- chart and per-step analysis -------------------------------------------------------
  function figure(box, uri, note, alt) {
    if (uri) {
      var img = add(box, node('img', 'plot'));
      img.alt = alt;
      img.src = uri;
    } else if (note) {
      add(box, node('p', 'note missing-plot', note));
    }
  }
  function renderAnalysis() {
    var A = DATA.analysis || { datasets: [] };
    var chartBox = document.getElementById('chart-box');
    if (!A.chart && !A.chart_note) {
      document.getElementById('chart-section').hidden = true;
    }
    figure(chartBox, A.chart, A.chart_note, 'leaderboard chart');
    var box = document.getElementById('analysis-box');
    if (!A.datasets.length) { add(box, node('p', 'note', 'No episodes to analyse.')); }
    A.datasets.forEach(function (d) {
      var section = add(box, node('div', 'analysis-dataset'));
      section.dataset.dataset = d.dataset;
      add(section, node('h3', null, d.dataset));
      figure(add(section, node('div', 'figure')), d.img, d.note, d.dataset + ' per-step analysis');
      var buckets = Object.keys(d.agents[0].outcomes);
      var table = add(add(section, node('div', 'scroll')), node('table', 'outcomes'));
      var hr = add(add(table, node('thead')), node('tr'));
      ['agent', 'n', 'recall by step'].concat(buckets).forEach(function (t, i) {
        add(hr, node('th', i === 0 || i === 2 ? null : 'num', t));
      });
      var body = add(table, node('tbody'));
      d.agents.forEach(function (a) {
        var tr = add(body, node('tr'));
        add(tr, node('td', null, a.agent));
        add(tr, node('td', 'num', String(a.n)));
        add(tr, node('td', 'recall', a.recall.length ? a.recall.map(function (v) {
          return v.toFixed(2);
        }).join(' \u2192 ') : '-'));
        buckets.forEach(function (b) {
          var share = a.n ? ' (' + Math.round(100 * a.outcomes[b] / a.n) + '%)' : '';
          add(tr, node('td', 'num', a.outcomes[b] + share));
        });
      });
    });
  }

  // ---- leaderboard tables ----------------------------------------------------------------
  function renderTable(table, data, onRow) {
    var head = add(add(table, node('thead')), node('tr'));
    data.columns.forEach(function (title, c) {
      var th = add(head, node('th', data.numeric[c] ? 'num' : null, title));
      th.title = data.keys[c];
    });
    var best = new Set(data.best.map(function (rc) { return rc[0] + ':' + rc[1]; }));
    var body = add(table, node('tbody'));
    data.rows.forEach(function (row, r) {
      var tr = add(body, node('tr'));
      row.forEach(function (value, c) {
        var cls = [];
        if (data.numeric[c]) { cls.push('num'); }
        if (best.has(r + ':' + c)) { cls.push('best'); }
        if (data.keys[c] === 'failures' && value !== '-' && value !== '0') { cls.push('bad'); }
        add(tr, node('td', cls.join(' ') || null, value));
      });
      if (onRow) {
        tr.title = 'Browse these episodes';
        tr.addEventListener('click', function () { onRow(row); });
      }
    });
  }

  // ---- filters ---------------------------------------------------------------------------
  var fDataset = document.getElementById('filter-dataset');
  var fAgent = document.getElementById('filter-agent');
  var fStatus = document.getElementById('filter-status');
  var fSearch = document.getElementById('filter-search');

  function fillSelect(select, values) {
    values.forEach(function (value) {
      var option = add(select, node('option', null, value));
      option.value = value;
    });
  }
  function distinct(index) {
    var seen = [];
    groups.forEach(function (g) { if (seen.indexOf(g[index]) < 0) { seen.push(g[index]); } });
    return seen;
  }
  function matches(ep) {
    var g = groups[ep.g];
    if (fDataset.value && g[0] !== fDataset.value) { return false; }
    if (fAgent.value && g[1] !== fAgent.value) { return false; }
    if (fStatus.value !== 'all' && ep.st !== fStatus.value) { return false; }
    var term = fSearch.value.trim().toLowerCase();
    if (term) {
      var hay = (ep.q + '\n' + ep.id).toLowerCase();
      return term.split(/\s+/).every(function (word) { return hay.indexOf(word) >= 0; });
    }
    return true;
  }

  // ---- episode list ----------------------------------------------------------------------
  function goldText(ep) {
    var gold = ep.gold.join(' / ');
    if (ep.letter) {
      var text = ep.opt && ep.opt[ep.letter];
      return ep.letter + (text ? ' (' + text + ')' : '');
    }
    return gold || '?';
  }
  function scoreText(ep) {
    var m = ep.m;
    if (groups[ep.g][2]) { return 'Acc ' + num(m.accuracy); }
    return 'EM ' + num(m.em) + ' \u00b7 F1 ' + num(m.f1);
  }
  var STATUS_LABEL = { correct: '\u2713 correct', wrong: '\u2717 wrong', failed: 'failed' };

  function renderEpisode(ep, index) {
    var g = groups[ep.g];
    var box = node('div', 'episode st-' + ep.st);
    box.dataset.index = String(index);
    box.dataset.status = ep.st;
    box.dataset.dataset = g[0];
    box.dataset.agent = g[1];
    var head = add(box, node('button', 'episode-head'));
    head.type = 'button';
    head.setAttribute('aria-expanded', 'false');
    var badges = add(head, node('span', 'badges'));
    add(badges, node('span', 'badge ' + ep.st, STATUS_LABEL[ep.st]));
    if (ep.err) {
      var err = add(badges, node('span', 'badge error', 'error'));
      err.title = ep.err;
    }
    var question = add(head, node('span', 'episode-question'));
    add(question, node('span', 'tag', g[0]));
    add(question, node('span', 'tag', g[1]));
    add(question, node('span', 'question-text', ep.q));
    var meta = ep.err
      ? 'error: ' + shorten(ep.err, 160)
      : 'answer: ' + (ep.ans === undefined || ep.ans === null ? '(none)' : shorten(ep.ans, 120)) +
        ' \u2014 gold: ' + shorten(goldText(ep), 120);
    meta += (ep.err ? '' : ' \u00b7 ' + scoreText(ep)) + ' \u00b7 ' + ep.steps.length +
      (ep.steps.length === 1 ? ' step' : ' steps');
    add(head, node('span', 'episode-meta', meta));
    var body = add(box, node('div', 'episode-body'));
    body.hidden = true;
    function toggle(show) {
      if (show && !body.firstChild) { renderDetails(ep, body); }
      body.hidden = !show;
      box.classList.toggle('open', show);
      head.setAttribute('aria-expanded', String(show));
      if (show) { open.add(index); } else { open.delete(index); }
    }
    head.addEventListener('click', function () { toggle(body.hidden); });
    if (open.has(index)) { toggle(true); }
    return box;
  }

  function kv(dl, label, value) {
    add(dl, node('dt', null, label));
    var dd = add(dl, node('dd'));
    if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = value; }
    return dd;
  }

  function renderStep(ep, step, i) {
    var li = node('li', 'step ' + step.t);
    var head = add(li, node('div', 'step-head'));
    add(head, node('span', 'step-no', String(i + 1) + '.'));
    add(head, node('span', 'action ' + step.t, step.t));
    if (step.t !== 'invalid' && step.x !== undefined && step.x !== null) {
      add(head, node('span', 'step-text', step.x));
    }
    var meta = [];
    if (step.rec !== undefined) { meta.push('evidence recall ' + num(step.rec)); }
    if (step.lat !== undefined) { meta.push(duration(step.lat)); }
    if (step.tok !== undefined) { meta.push(step.tok + ' tokens'); }
    if (step.r !== undefined && step.r !== 0) { meta.push('reward ' + num(step.r)); }
    if (meta.length) { add(head, node('span', 'step-meta', meta.join(' \u00b7 '))); }
    if (step.t === 'invalid') {
      if (step.aerr) { add(li, node('div', 'step-error', step.aerr)); }
      add(li, node('pre', 'raw', step.raw !== undefined ? step.raw : (step.x || '')));
    } else {
      if (step.aerr) { add(li, node('div', 'step-error', step.aerr)); }
      if (step.raw !== undefined) {
        var details = add(li, node('details'));
        add(details, node('summary', null, 'model output'));
        add(details, node('pre', 'raw', step.raw));
      }
    }
    if (step.docs) {
      var docs = add(li, node('ol', 'docs'));
      var texts = (DATA.texts || {})[groups[ep.g][0]] || {};
      step.docs.forEach(function (doc) {
        var item = add(docs, node('li', doc[2] ? 'doc gold' : 'doc'));
        var text = Object.prototype.hasOwnProperty.call(texts, doc[3]) ? texts[doc[3]] : null;
        var holder = item;
        if (text !== null) {
          var details = add(item, node('details', 'doc-details'));
          holder = add(details, node('summary'));
          add(details, node('div', 'doc-text', text));
        }
        add(holder, node('span', 'doc-title', doc[0]));
        add(holder, node('span', 'doc-score', num(doc[1], 2)));
      });
    }
    if (step.cands) {
      var table = add(li, node('table', 'candidates'));
      var hr = add(add(table, node('thead')), node('tr'));
      ['#', 'candidate', 'score', 'scorer', 'note'].forEach(function (t) {
        add(hr, node('th', null, t));
      });
      var tbody = add(table, node('tbody'));
      step.cands.forEach(function (c, j) {
        var tr = add(tbody, node('tr', 'candidate' + (step.ch === j ? ' chosen' : '')));
        add(tr, node('td', null, String(j + 1)));
        var what = add(tr, node('td'));
        if (c.t) {
          add(what, node('span', 'action ' + c.t, c.t));
          what.appendChild(document.createTextNode(' ' + (c.x || '')));
        } else {
          what.textContent = shorten(c.text || '', 200);
        }
        what.title = c.text || '';
        add(tr, node('td', 'num', c.s === undefined ? '-' : num(c.s)));
        add(tr, node('td', null, c.by || ''));
        add(tr, node('td', c.err ? 'bad' : null, c.err || (c.out ? shorten(c.out, 200) : '')));
      });
    }
    return li;
  }

  function renderDetails(ep, body) {
    var g = groups[ep.g];
    var dl = add(body, node('dl', 'kv'));
    kv(dl, 'question', ep.q);
    kv(dl, 'example', ep.id);
    kv(dl, 'cell', g[0] + ' / ' + g[1]);
    kv(dl, 'ended', ep.end);
    if (ep.err) { kv(dl, 'error', node('pre', 'error-text', ep.err)); }
    if (ep.opt) {
      var list = add(body, node('ul', 'options'));
      Object.keys(ep.opt).forEach(function (letter) {
        var cls = [];
        if (letter === ep.letter) { cls.push('gold'); }
        if (letter === ep.ans) { cls.push('picked'); }
        var text = letter + ') ' + ep.opt[letter];
        if (letter === ep.letter) { text += '  \u2190 gold'; }
        if (letter === ep.ans) { text += '  \u2190 answered'; }
        add(list, node('li', cls.join(' ') || null, text));
      });
    }
    var steps = add(body, node('ol', 'steps'));
    if (!ep.steps.length) { add(steps, node('li', 'note', 'No steps were recorded.')); }
    ep.steps.forEach(function (step, i) { steps.appendChild(renderStep(ep, step, i)); });

    var final = add(body, node('dl', 'kv final'));
    kv(final, 'final answer', ep.ans === undefined || ep.ans === null ? '(none)' : ep.ans);
    kv(final, 'gold', goldText(ep));
    if (ep.ev) {
      var seen = new Set();
      ep.steps.forEach(function (s) {
        (s.docs || []).forEach(function (d) { if (d[2]) { seen.add(d[0]); } });
      });
      var chips = node('span');
      ep.ev.forEach(function (title) {
        var chip = add(chips, node('span', seen.has(title) ? 'chip found' : 'chip', title));
        chip.title = seen.has(title) ? 'retrieved' : 'not retrieved';
      });
      kv(final, 'gold evidence', chips);
    }
    var metrics = node('span');
    Object.keys(ep.m).forEach(function (key) {
      add(metrics, node('span', 'chip metric', key + ' ' + num(ep.m[key])));
    });
    kv(final, 'metrics', Object.keys(ep.m).length ? metrics : '-');
  }

  var list = document.getElementById('episodes');
  var counter = document.getElementById('episode-count');
  var shown = document.getElementById('episode-shown');
  var more = document.getElementById('show-more');

  function update(keepLimit) {
    if (!keepLimit) { limit = PAGE; }
    var hits = [];
    episodes.forEach(function (ep, i) { if (matches(ep)) { hits.push(i); } });
    list.textContent = '';
    var fragment = document.createDocumentFragment();
    hits.slice(0, limit).forEach(function (i) {
      fragment.appendChild(renderEpisode(episodes[i], i));
    });
    list.appendChild(fragment);
    if (!hits.length) { add(list, node('div', 'empty', 'No episode matches these filters.')); }
    counter.textContent = String(hits.length);
    counter.dataset.count = String(hits.length);
    shown.textContent = hits.length > limit ? '(showing the first ' + limit + ')' : '';
    more.hidden = hits.length <= limit;
  }

  renderHeader();
  renderAnalysis();
  if (DATA.summary && DATA.summary.rows.length) {
    document.getElementById('summary-section').hidden = false;
    renderTable(document.getElementById('summary'), DATA.summary, null);
  }
  renderTable(document.getElementById('leaderboard'), DATA.full, function (row) {
    fDataset.value = row[0];
    fAgent.value = row[1];
    fStatus.value = 'all';
    update();
    document.getElementById('browser').scrollIntoView({ behavior: 'smooth' });
  });
  fillSelect(fDataset, distinct(0));
  fillSelect(fAgent, distinct(1));
  document.getElementById('episode-total').textContent = String(episodes.length);
  [fDataset, fAgent, fStatus].forEach(function (s) {
    s.addEventListener('change', function () { update(); });
  });
  fSearch.addEventListener('input', function () { update(); });
  document.getElementById('filter-reset').addEventListener('click', function () {
    fDataset.value = ''; fAgent.value = ''; fStatus.value = 'all'; fSearch.value = '';
    update();
  });
  more.addEventListener('click', function () { limit += PAGE; update(true); });
  update();
})();
"""
