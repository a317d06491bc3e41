"""How a dense index encodes queries and passages: prefixes, pooling, asymmetric models.

Dense retrievers differ in more than their weights. E5 wants ``"query: "`` and
``"passage: "`` in front of the texts, BGE an instruction in front of the query, MedCPT a
separate query encoder, CLS pooling and the title and text of a passage given to the
tokenizer as a sentence pair. :class:`EncoderSpec` records those choices so a saved index
is reloaded with the same ones; :data:`ENCODER_PRESETS` names the common families.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

__all__ = [
    "BGE_QUERY_INSTRUCTION",
    "ENCODER_PRESETS",
    "MEDCPT_ARTICLE_MODEL",
    "MEDCPT_QUERY_MODEL",
    "PASSAGE_INPUTS",
    "POOLING_MODES",
    "EncoderSpec",
    "resolve_encoder_spec",
]

PoolingMode = Literal["cls", "mean"]
PassageInput = Literal["text", "pair"]

POOLING_MODES: tuple[str, ...] = ("cls", "mean")
"""Pooling overrides; ``None`` keeps the model's own pooling."""
PASSAGE_INPUTS: tuple[str, ...] = ("text", "pair")
"""``"text"``: the passage-format string; ``"pair"``: (title, text) as a sentence pair."""
BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
"""The instruction BGE (English, v1.5) puts in front of retrieval queries."""
MEDCPT_ARTICLE_MODEL = "ncbi/MedCPT-Article-Encoder"
"""MedCPT's document model: give it as ``model`` with the ``"medcpt"`` preset."""
MEDCPT_QUERY_MODEL = "ncbi/MedCPT-Query-Encoder"
"""MedCPT's query model (the ``"medcpt"`` preset's ``query_model``)."""


@dataclass(frozen=True)
class EncoderSpec:
    """How queries and passages are turned into embeddings (hashable, JSON-ready).

    The default is the plain spec: no prefixes, the model's own pooling, one model for
    queries and passages, the passage-format string as input, L2-normalised embeddings.
    The prefixes are added by raggym, on top of any prompts the model itself configures for
    ``encode_query``/``encode_document``.

    Attributes:
        query_prefix: text put in front of every query (e.g. e5's ``"query: "``).
        passage_prefix: text put in front of every passage (in front of the title for
            ``passage_input="pair"``).
        pooling: ``"cls"`` or ``"mean"`` to replace the model's pooling; ``None`` keeps it.
        query_model: a separate model for queries (hub name or local path); ``None`` means
            the document model encodes queries too.
        passage_input: ``"text"`` or ``"pair"`` (see :data:`PASSAGE_INPUTS`).
        normalize: L2-normalise embeddings, so inner products are cosine similarities.
    """

    query_prefix: str = ""
    passage_prefix: str = ""
    pooling: PoolingMode | None = None
    query_model: str | None = None
    passage_input: PassageInput = "text"
    normalize: bool = True

    def __post_init__(self) -> None:
        for name in ("query_prefix", "passage_prefix"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {getattr(self, name)!r}")
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise ValueError(
                f"pooling must be None or one of {POOLING_MODES}, got {self.pooling!r}"
            )
        if self.query_model is not None and (
            not isinstance(self.query_model, str) or not self.query_model
        ):
            raise ValueError(
                f"query_model must be None or a non-empty str, got {self.query_model!r}"
            )
        if self.passage_input not in PASSAGE_INPUTS:
            raise ValueError(
                f"passage_input must be one of {PASSAGE_INPUTS}, got {self.passage_input!r}"
            )
        if not isinstance(self.normalize, bool):
            raise TypeError(f"normalize must be a bool, got {self.normalize!r}")

    @property
    def asymmetric(self) -> bool:
        """Whether queries have a model of their own."""
        return self.query_model is not None

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (every field, defaults included)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderSpec:
        """Rebuild a spec from :meth:`to_dict`; missing fields take their defaults.

        Raises:
            TypeError: for a non-mapping or unknown fields.
            ValueError: for invalid values.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"an encoder spec must be a mapping, got {type(data).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(f"unknown encoder spec fields: {', '.join(map(str, unknown))}")
        return cls(**dict(data))

    def with_query_model(self, query_model: str | None) -> EncoderSpec:
        """This spec with another query model (e.g. its resolved, recorded name)."""
        return replace(self, query_model=query_model)

    def query_text(self, query: str) -> str:
        """The text a query is encoded as."""
        return f"{self.query_prefix}{query}"


ENCODER_PRESETS: dict[str, EncoderSpec] = {
    "plain": EncoderSpec(),
    "e5": EncoderSpec(query_prefix="query: ", passage_prefix="passage: "),
    "bge": EncoderSpec(query_prefix=BGE_QUERY_INSTRUCTION),
    "medcpt": EncoderSpec(
        pooling="cls", query_model=MEDCPT_QUERY_MODEL, passage_input="pair", normalize=False
    ),
}
"""Specs of the common encoder families, by name: ``plain`` (no prefixes), ``e5``
(``"query: "``/``"passage: "``), ``bge`` (the query instruction) and ``medcpt`` (the
query model :data:`MEDCPT_QUERY_MODEL`, CLS pooling, (title, text) sentence pairs and raw
inner products, as MedRAG and RAG-Gym score MedCPT; the document model is
:data:`MEDCPT_ARTICLE_MODEL`, given as ``model``)."""


def resolve_encoder_spec(encoder: EncoderSpec | Mapping[str, Any] | str | None) -> EncoderSpec:
    """An :class:`EncoderSpec` from a spec, a dict of its fields, a preset name or ``None``.

    Raises:
        ValueError: for an unknown preset name or invalid fields.
        TypeError: for another type or unknown fields.
    """
    if encoder is None:
        return ENCODER_PRESETS["plain"]
    if isinstance(encoder, EncoderSpec):
        return encoder
    if isinstance(encoder, str):
        try:
            return ENCODER_PRESETS[encoder]
        except KeyError:
            raise ValueError(
                f"unknown encoder preset {encoder!r}; known: {', '.join(ENCODER_PRESETS)}"
            ) from None
    if isinstance(encoder, Mapping):
        return EncoderSpec.from_dict(encoder)
    raise TypeError(
        f"encoder must be an EncoderSpec, a dict or a preset name, got {type(encoder).__name__}"
    )
