"""People's annotations -> SFT, DPO and critic rows, through the episode converters.

:func:`~raggym_env.annotations.human_scored` re-scores annotated episodes with one
annotator's judgements; the rows then come from :func:`~raggym.trainers.datasets.sft_rows`,
:func:`~raggym.trainers.datasets.dpo_rows` and :func:`~raggym.trainers.datasets.reward_rows`
exactly as for machine-scored episodes. The studio finds :func:`annotation_rows` through
the ``raggym.annotation_exporters`` entry point, since benchmarks never import trainers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from raggym.trainers.datasets import DatasetStats, dpo_rows, reward_rows, sft_rows
from raggym_env.annotations import Annotation, human_scored, latest_annotations
from raggym_env.corpora import BaseCorpus
from raggym_env.episode import EpisodeRecord

__all__ = ["EXPORT_FORMATS", "annotation_rows"]

EXPORT_FORMATS = ("sft", "dpo", "critic")
"""What :func:`annotation_rows` builds: SFT rows, DPO pairs, critic (reward-model) pairs."""


def annotation_rows(
    records: Iterable[EpisodeRecord],
    annotations: Iterable[Annotation],
    kind: str,
    *,
    annotators: Iterable[str] | None = None,
    corpus: BaseCorpus | None = None,
    rejected_rank: int = 2,
    stats: DatasetStats | None = None,
) -> list[dict[str, Any]]:
    """Training rows of ``kind`` (``"sft"``, ``"dpo"`` or ``"critic"``) from people's judgements.

    Each annotator's judgements give their own rows (``meta["annotator"]`` says whose).
    DPO and critic pairs set each step's best candidate against every one a person put
    strictly lower (``rejected_rank`` 2: good against bad marks, first against the rest
    of a ranking). SFT rows are the steps the person judged, imitating the person's best
    candidate; a step whose own action was marked bad gives no SFT row. Critic rows
    rebuild observations from ``corpus`` (the one the episodes were played on).
    """
    if kind not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {kind!r}; choose one of {EXPORT_FORMATS}")
    records = list(records)
    judged = latest_annotations(annotations)
    names = sorted({a.annotator for a in judged} if annotators is None else set(annotators))
    rows: list[dict[str, Any]] = []
    for name in names:
        episodes = human_scored(records, judged, name)
        if kind == "sft":
            made = []
            for episode in episodes:  # one at a time: two episodes may share a question id
                wanted = {
                    position
                    for position, step in enumerate(episode.steps)
                    if (step.candidates or "human_label" in step.extra)
                    and step.extra.get("human_label") != "bad"
                }
                made += [
                    row
                    for row in sft_rows([episode], kept_only=False, stats=stats)
                    if row["meta"]["step"] in wanted
                ]
        elif kind == "dpo":
            made = dpo_rows(episodes, rejected_rank=rejected_rank, stats=stats)
        else:
            made = reward_rows(episodes, corpus, rejected_rank=rejected_rank, stats=stats)
        for row in made:
            row["meta"] = {**row.get("meta", {}), "annotator": name}
        rows.extend(made)
    return rows
