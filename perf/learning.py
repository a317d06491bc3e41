"""Proof that learning works: SFT, then GRPO and DPO, on a synthetic two-hop task, on CPU.

A small world is generated from a seed: people born in towns, towns in countries. Each
person and each town gets one document; each question asks "In which country was <person>
born?", which needs the person's document (for the town) and then the town's document (for
the country). Gold answers and gold evidence document ids come with every question.
Retrieval is real: BM25 over the generated corpus, through :class:`~raggym_env.env.RAGEnv`.

A person's name is a first and a family name drawn from two small pools, and the held-out
questions are about people whose every name part, town and country also occurs in the
training questions (:func:`split_examples`). A held-out question is therefore a new
combination of tokens the model has already written: it generalises by copying from the
question and the documents, which a model can learn, rather than by writing a token it was
never trained to produce, which it cannot.

A tiny Llama (untied embeddings) and a byte-level BPE tokenizer trained on the world's text
(so names are single tokens) are built from scratch. The tokenizer carries TRL's Qwen3
training template with the tools listed in one line (:func:`use_compact_tool_template`):
with the full JSON schemas, 450 of the 610 prompt tokens, this model never learns to copy
the name from the question. Then:

1. **SFT on oracle trajectories.** Each training question's oracle episode (search the
   person, search the town, answer the country) is rendered token for token as TRL's GRPO
   tool loop renders a rollout: the chat template with the tools, the model's
   ``<tool_call>`` turns, and the tool results appended as TRL appends them. Every model
   turn becomes one prompt-completion row for :func:`~raggym.trainers.sft.train_sft`
   (LoRA of full rank on every projection; embeddings, output layer and norms trained in
   full through ``lora_modules_to_save``). Held-out EM is measured by running the model
   greedily through the same tool loop against :class:`~raggym.trainers.grpo.RAGToolEnv`.
2. **GRPO from the SFT model** with :func:`~raggym.trainers.grpo.train_grpo`: mean reward
   per optimizer step (PNG with a moving average), the mean of the first and last 20 steps,
   and held-out EM after.
3. **DPO from the SFT model**: several sampled trajectories per *preference* question (a
   third set, kept out of SFT like the held-out one: on the questions it was fitted to, the
   SFT model's mistakes are sampling noise its greedy policy does not make), a correct and
   an incorrect one paired at the first model turn where they differ (same context, so the
   pair is a real preference between two actions), trained with
   :func:`~raggym.trainers.dpo.train_dpo`; held-out EM before and after. A policy whose
   every sample is right leaves nothing to prefer: DPO is then reported as not run.

Every model is also scored by the held-out EM of its sampled policy (``{phase}_sampled_em``):
greedy EM saturates near 1 while the probability of right actions still moves.

    python perf/learning.py [--out DIR] [--quick] [--seed 0] [--sft-epochs N]
                            [--grpo-steps N] [--people N] [--hidden N] [--layers N]

``--quick`` shrinks everything so the script runs end to end in about a minute; its figures
only show that every phase ran. Progress goes to stderr, the Markdown report to stdout, and
``--out`` receives ``learning.json`` (every figure and curve) and ``grpo_reward.png``. The
exit status is non-zero when a phase failed; a failed figure is reported as failed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import random
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear layer of a Llama block gets a LoRA adapter (of full rank: see ``lora_r``)."""

PHASES = ("setup", "sft", "grpo", "dpo")
"""The phases, in the order they run."""

SPLITS = ("held_out", "train")
"""The question sets greedy EM and the hop figures are reported on."""

FULLY_TRAINED = ("embed_tokens", "lm_head", "norm")
"""Modules a from-scratch model trains in full beside its adapters (``norm`` matches all)."""

_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def log(message: str) -> None:
    """Progress line on stderr (the report goes to stdout)."""
    print(f"[learning {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The synthetic world
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """People born in towns, towns in countries, and the documents that say so."""

    people: dict[str, str]
    towns: dict[str, str]

    def passages(self) -> list[tuple[str, str]]:
        """``(title, text)`` of every document: one per person and one per town."""
        docs = [(p, f"{p} was born in {t}.") for p, t in self.people.items()]
        docs += [(t, f"{t} is a town in the country of {c}.") for t, c in self.towns.items()]
        return docs


def _names(rng: random.Random, count: int, taken: set[str], syllables: int) -> list[str]:
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    names: list[str] = []
    while len(names) < count:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
        word = (word + rng.choice("nrsl")).capitalize()
        if word not in taken:
            taken.add(word)
            names.append(word)
    return names


def make_world(seed: int, people: int, towns: int, countries: int, pool: int) -> World:
    """A seeded world; every town gets people and every country gets towns.

    A person's name is a first name and a family name drawn from two pools of ``pool``
    names each, so people outnumber the names they are made of: every name token the model
    must write for an unseen person is one it has written for people seen in training (see
    :func:`split_examples`), and what it must learn is to copy, not to recall.
    """
    if people > pool * pool:
        raise ValueError(
            f"{people} people need a name pool of at least {math.isqrt(people - 1) + 1}"
        )
    rng = random.Random(seed)
    taken: set[str] = set()
    country_names = _names(rng, countries, taken, 3)
    town_names = _names(rng, towns, taken, 2)
    firsts, families = _names(rng, pool, taken, 2), _names(rng, pool, taken, 2)
    person_names = [
        f"{a} {b}" for a, b in rng.sample([(a, b) for a in firsts for b in families], people)
    ]
    town_of = {t: country_names[i % countries] for i, t in enumerate(town_names)}
    born = {p: town_names[i % towns] for i, p in enumerate(person_names)}
    return World(people=born, towns=town_of)


def make_examples(world: World, corpus: Any) -> list[Any]:
    """One two-hop question per person, with gold answer and gold evidence document ids."""
    from raggym_env.types import Evidence, QAExample

    ids = {doc.title: doc.id for doc in corpus}
    examples = []
    for index, (person, town) in enumerate(world.people.items()):
        examples.append(
            QAExample(
                f"q{index}",
                f"In which country was {person} born?",
                (world.towns[town],),
                evidence=Evidence(titles=(person, town), doc_ids=(ids[person], ids[town])),
                meta={"person": person, "town": town},
            )
        )
    return examples


def split_examples(
    examples: Sequence[Any], held_out: int, seed: int
) -> tuple[list[Any], list[Any]]:
    """``(held_out, train)``: a seeded split whose held-out people have only trained names.

    A question goes to the held-out side only while both parts of its person's name, its
    town and its country still occur among the training questions, so a held-out question
    asks for a new combination of things the model has written before, never a token it has
    never produced (an untrained output row cannot be copied).
    """
    order = list(examples)
    random.Random(seed).shuffle(order)

    def parts(example: Any) -> list[str]:
        return [*example.meta["person"].split(), example.meta["town"], example.answers[0]]

    counts: dict[str, int] = {}
    for example in order:
        for part in parts(example):
            counts[part] = counts.get(part, 0) + 1
    test, train = [], []
    for example in order:
        if len(test) < held_out and all(counts[part] > 1 for part in parts(example)):
            test.append(example)
            for part in parts(example):
                counts[part] -= 1
        else:
            train.append(example)
    if len(test) < held_out:
        raise ValueError(f"only {len(test)} held-out questions keep every name in training")
    return test, train


# ---------------------------------------------------------------------------------------------
# The tool loop, token for token as TRL's GRPO renders it
# ---------------------------------------------------------------------------------------------


def env_tools(tool_env: Any) -> list[Callable[..., str]]:
    """The env's tools in the order TRL lists them (public methods of the class, by name)."""
    return [
        getattr(tool_env, name)
        for name, _ in inspect.getmembers(type(tool_env), predicate=inspect.isfunction)
        if name not in ("reset", "get_reward") and not name.startswith("_")
    ]


def tool_turn(name: str, arguments: dict[str, str]) -> str:
    """A model turn that calls one tool, in the Qwen3 template's tool-call format."""
    call = json.dumps({"name": name, "arguments": arguments})
    return f"<tool_call>\n{call}\n</tool_call>"


_QWEN3_TOOLS_PREAMBLE = re.compile(
    r'\{\{- "# Tools\\n.*?</tool_call><\|im_end\|>\\n" \}\}', re.DOTALL
)


def compact_tools_line(schemas: Sequence[dict[str, Any]]) -> str:
    """The one line that lists the tools in the compact template, e.g. ``Tools: search(query)``."""
    calls = [
        f"{s['function']['name']}({', '.join(s['function']['parameters']['properties'])})"
        for s in schemas
    ]
    return "Tools: " + " ".join(calls)


def use_compact_tool_template(tokenizer: Any) -> None:
    """Give the tokenizer TRL's Qwen3 training template with the tools listed in one line.

    The Qwen3 template spells out every tool's JSON schema and a paragraph of calling
    instructions: about 450 of the 610 tokens before the question. A two-layer model
    trained from scratch on a few hundred rows then never learns to copy the name in the
    question into its first search (a measured 0 of 60 held-out names after 10 epochs of
    first turns; 0.70 with the question alone in the prompt). The compact template keeps
    everything else of TRL's training template, so tool calls, tool results and TRL's
    prefix-preservation are unchanged, and carries the Qwen3 response parser TRL would add.
    """
    from trl import chat_template_utils as templates

    compact, found = _QWEN3_TOOLS_PREAMBLE.subn(
        """{%- for tool in tools %}{{- (' ' if loop.index0 else 'Tools: ') + tool.function.name"""
        """ + '(' + (tool.function.parameters.properties | list | join(', ')) + ')' }}"""
        """{%- endfor %}{{- '<|im_end|>\\n' }}""",
        templates.qwen3_training_chat_template,
    )
    if found != 1:
        raise RuntimeError("TRL's Qwen3 training template changed: its tools block was not found")
    tokenizer.chat_template = compact
    tokenizer.response_template = templates.qwen3_template


class Renderer:
    """Builds the token ids of a rollout exactly as TRL's tool loop concatenates them."""

    def __init__(self, tokenizer: Any, instructions: str) -> None:
        from trl.chat_template_utils import (
            get_training_chat_template,
            is_chat_template_prefix_preserving,
        )

        self.tokenizer = tokenizer
        self.instructions = instructions
        # TRL swaps in its prefix-preserving training template when the tokenizer's is not
        self.template: str | None = None
        if not is_chat_template_prefix_preserving(tokenizer):
            self.template = get_training_chat_template(tokenizer)

    def prompt_ids(self, observation: str, tools: Sequence[Callable[..., str]]) -> list[int]:
        """System instructions, the question in the user message, the tools' schemas."""
        messages = [
            {"role": "system", "content": self.instructions},
            {"role": "user", "content": observation},
        ]
        out = self.tokenizer.apply_chat_template(
            [messages],
            tools=list(tools),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            chat_template=self.template,
        )
        return list(out["input_ids"][0])

    def turn_ids(self, text: str) -> list[int]:
        """A model turn's tokens, closed by the end-of-turn (eos) token."""
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False)
        return [*ids, self.tokenizer.eos_token_id]

    def tool_suffix_ids(self, name: str, content: str) -> list[int]:
        """The tokens TRL appends after a tool call: the tool result and the next header."""
        dummy = [
            {"role": "user", "content": "dummy"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": name, "arguments": {}}}],
            },
        ]
        tool = [{"role": "tool", "name": name, "content": content}]

        def render(messages: list[dict[str, Any]], generation: bool) -> list[int]:
            return list(
                self.tokenizer.apply_chat_template(
                    messages,
                    add_generation_prompt=generation,
                    tokenize=True,
                    return_dict=False,
                    chat_template=self.template,
                )
            )

        prefix = render(dummy, False)
        full = render(dummy + tool, True)
        eos = [i for i, tok in enumerate(prefix) if tok == self.tokenizer.eos_token_id]
        if eos:
            prefix = prefix[: eos[-1] + 1]
        if full[: len(prefix)] != prefix:
            raise ValueError("the chat template's tool rendering is not prefix-stable")
        return full[len(prefix) :]


@dataclass
class Rollout:
    """One episode: the model turns with the context each was produced in, and the score."""

    example_id: str
    turns: list[tuple[list[int], list[int]]] = field(default_factory=list)
    em: float = 0.0
    reward: float = 0.0


def parse_call(text: str) -> tuple[str, dict[str, Any]] | None:
    """The first tool call of a model turn, or ``None`` when it made none (or a broken one)."""
    match = _TOOL_CALL.search(text)
    if match is None:
        return None
    try:
        call = json.loads(match.group(1))
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("arguments"), dict):
        return None
    return str(call.get("name")), call["arguments"]


def oracle_rollout(renderer: Renderer, tool_env: Any, example: Any) -> Rollout:
    """The oracle episode: search the person, search the town, answer the country."""
    observation = tool_env.reset(example_id=example.id)
    context = renderer.prompt_ids(observation, env_tools(tool_env))
    rollout = Rollout(example.id)
    person, town = example.meta["person"], example.meta["town"]
    for name, args in (
        ("search", {"query": person}),
        ("search", {"query": f"{town} country"}),
        ("answer", {"text": example.answers[0]}),
    ):
        turn = renderer.turn_ids(tool_turn(name, args))
        rollout.turns.append((list(context), turn))
        result = getattr(tool_env, name)(**args)
        context = context + turn + renderer.tool_suffix_ids(name, result)
    rollout.reward = tool_env.get_reward()
    rollout.em = tool_env.final_metrics.get("em", 0.0)
    return rollout


def run_policy(
    model: Any,
    renderer: Renderer,
    factory: Any,
    examples: Sequence[Any],
    *,
    max_turns: int,
    max_new_tokens: int,
    sample: bool,
    temperature: float = 1.0,
    batch_size: int = 32,
) -> list[Rollout]:
    """Run the model through the tool loop on every example (batched, left-padded)."""
    import torch

    tokenizer = renderer.tokenizer
    rollouts: list[Rollout] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        envs = [factory() for _ in chunk]
        contexts = []
        for tool_env, example in zip(envs, chunk, strict=True):
            contexts.append(
                renderer.prompt_ids(tool_env.reset(example_id=example.id), env_tools(tool_env))
            )
        batch = [Rollout(example.id) for example in chunk]
        active = list(range(len(chunk)))
        for _ in range(max_turns):
            if not active:
                break
            width = max(len(contexts[i]) for i in active)
            pad = tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(contexts[i])) + contexts[i] for i in active])
            mask = torch.tensor(
                [[0] * (width - len(contexts[i])) + [1] * len(contexts[i]) for i in active]
            )
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=sample,
                    temperature=temperature if sample else None,
                    top_k=0,
                    top_p=1.0,
                    pad_token_id=pad,
                    eos_token_id=tokenizer.eos_token_id,
                )
            still: list[int] = []
            for row, i in enumerate(active):
                generated = out[row, width:].tolist()
                if tokenizer.eos_token_id in generated:
                    generated = generated[: generated.index(tokenizer.eos_token_id) + 1]
                else:
                    generated = [tok for tok in generated if tok != pad]
                batch[i].turns.append((list(contexts[i]), generated))
                call = parse_call(tokenizer.decode(generated))
                if call is None or call[0] not in ("search", "answer") or not generated:
                    continue
                name, args = call
                try:
                    result = getattr(envs[i], name)(**args)
                except TypeError as error:  # wrong argument names: a failed tool call
                    result = json.dumps({"error": str(error)})
                if name == "answer" or "episode" in str(result)[-80:]:
                    continue
                contexts[i] = contexts[i] + generated + renderer.tool_suffix_ids(name, str(result))
                still.append(i)
            active = still
        for tool_env, rollout in zip(envs, batch, strict=True):
            rollout.reward = tool_env.get_reward()
            rollout.em = tool_env.final_metrics.get("em", 0.0)
        rollouts.extend(batch)
    return rollouts


# ---------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """Sizes of one run (``--quick`` shrinks them)."""

    seed: int = 0
    people: int = 220
    name_pool: int = 16
    held_out: int = 60
    dpo_questions: int = 60
    towns: int = 12
    countries: int = 4
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    vocab: int = 1200
    sft_epochs: float = 40.0
    sft_lr: float = 2e-3
    grpo_steps: int = 100
    grpo_lr: float = 2e-4
    grpo_questions_per_step: int = 4
    grpo_generations: int = 8
    dpo_samples: int = 6
    dpo_temperature: float = 0.7  # near the greedy policy: its plausible mistakes, not noise
    dpo_epochs: float = 3.0
    dpo_lr: float = 2e-4
    dpo_beta: float = 0.1
    dpo_sft_weight: float = 1.0  # RPO: keeps the chosen (mostly oracle) turns likely
    max_new_tokens: int = 32
    k: int = 2
    max_turns: int = 4


class Phases:
    """Runs the phases in order, timing each and keeping every figure (or why it failed)."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.s = settings
        self.workdir = workdir
        self.figures: dict[str, Any] = {}
        self.curves: dict[str, list[float]] = {}
        self.minutes: dict[str, float] = {}
        self.failures: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        """Phases that ran without error but had nothing to train on, and why."""

    def timed(self, name: str, function: Callable[[], None]) -> bool:
        """Run one phase; on an exception record it as failed and return False."""
        log(f"phase {name} ...")
        start = time.perf_counter()
        try:
            function()
            ok = True
        except Exception as error:  # noqa: BLE001 - a failed phase is reported, not hidden
            traceback.print_exc(file=sys.stderr)
            self.failures[name] = f"{type(error).__name__}: {error}"
            ok = False
        self.minutes[name] = (time.perf_counter() - start) / 60
        log(f"phase {name} {'done' if ok else 'FAILED'} in {self.minutes[name]:.2f} min")
        return ok

    # -- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        """The world, corpus, questions, envs, tokenizer and the from-scratch model."""
        import torch
        import transformers

        from raggym.testing.tiny import build_tiny_tokenizer
        from raggym.trainers.grpo import GRPO_INSTRUCTIONS, RAGToolEnvFactory
        from raggym_env.corpora import Corpus

        s = self.s
        world = make_world(s.seed, s.people, s.towns, s.countries, s.name_pool)
        self.corpus = Corpus.from_passages(world.passages(), name="synthetic-world")
        examples = make_examples(world, self.corpus)
        unseen, self.train = split_examples(examples, s.held_out + s.dpo_questions, s.seed)
        self.test, self.preference = unseen[: s.held_out], unseen[s.held_out :]
        self.train_factory = self.factory(self.train)
        self.test_factory = self.factory(self.test)
        self.preference_factory = self.factory(self.preference)
        probe = self.train_factory()
        tools = env_tools(probe)
        # the tokenizer learns the world's names and the rendered prompt, so both are short
        tool_line = compact_tools_line([transformers.utils.get_json_schema(t) for t in tools])
        texts = [text for _, text in world.passages()] + [ex.question for ex in examples]
        texts += [GRPO_INSTRUCTIONS, tool_line] * 20
        texts += [tool_turn("search", {"query": f"{t} country"}) for t in world.towns] * 5
        tokenizer = build_tiny_tokenizer(texts, vocab_size=s.vocab, tool_calling=True)
        use_compact_tool_template(tokenizer)
        config = transformers.LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=s.hidden,
            intermediate_size=2 * s.hidden,
            num_hidden_layers=s.layers,
            num_attention_heads=s.heads,
            num_key_value_heads=s.heads,
            max_position_embeddings=2048,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=False,
        )
        torch.manual_seed(s.seed)
        model = transformers.LlamaForCausalLM(config)
        # LoRA alone would leave the embeddings, the output layer and the norms of this
        # from-scratch model frozen at their random init (the logits then stay near 2.5 and
        # the loss cannot fall below ~log(vocab) - 2): they train in full through
        # ``lora_modules_to_save`` (see :meth:`Phases.lora`), untied so both sides learn.
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        self.base_dir = self.workdir / "base"
        model.save_pretrained(self.base_dir)
        tokenizer.save_pretrained(self.base_dir)
        self.tokenizer = tokenizer
        self.renderer = Renderer(tokenizer, GRPO_INSTRUCTIONS)
        oracle = [oracle_rollout(self.renderer, probe, ex) for ex in self.train[:5]]
        if any(r.em != 1.0 for r in oracle):
            raise RuntimeError("the oracle trajectories do not answer correctly: retrieval is off")
        lengths = [len(ctx) + len(turn) for ctx, turn in oracle[0].turns]
        self.max_length = max(lengths) + 64
        # a whole rollout after the prompt: the oracle's turns and tool results, plus slack
        self.completion_budget = max(lengths) - len(oracle[0].turns[0][0]) + 48
        self.figures.update(
            train_questions=len(self.train),
            held_out_questions=len(self.test),
            preference_questions=len(self.preference),
            documents=len(self.corpus),
            vocab=len(tokenizer),
            parameters=sum(p.numel() for p in model.parameters()),
            oracle_episode_tokens=lengths[-1] + len(oracle[0].turns[-1][1]),
        )
        _ = RAGToolEnvFactory  # imported above to fail early when TRL is missing

    def factory(self, examples: Sequence[Any]) -> Any:
        """Rollout envs over the given questions: BM25 over the world's documents."""
        from raggym.trainers.grpo import RAGToolEnvFactory

        kwargs = {
            "task": "custom",
            "examples": list(examples),
            "corpus": self.corpus,
            "retriever": "bm25",
            "k": self.s.k,
            "max_steps": self.s.max_turns,
        }
        return RAGToolEnvFactory(env_kwargs=kwargs)

    def lora(self) -> dict[str, Any]:
        """Full-rank LoRA on every projection: as expressive as training those weights."""
        return {
            "lora_r": self.s.hidden,
            "lora_alpha": self.s.hidden,
            "lora_dropout": 0.0,
            "lora_target_modules": PROJECTIONS,
            "lora_modules_to_save": FULLY_TRAINED,
            "gradient_checkpointing": False,
            "save_strategy": "no",
            "seed": self.s.seed,
            "use_cpu": True,
        }

    def greedy_em(self, model_dir: Path, phase: str) -> tuple[float, float]:
        """Greedy EM of a model (loaded once), run through the tool loop with BM25 retrieval.

        Beside EM it records, per split, how often each hop was right (``{phase}_hops``):
        EM alone cannot tell a policy that reads the documents from one that writes the
        same few names whatever the question (which scores about one in ``countries``).
        It also records the held-out EM of the *sampled* policy (``{phase}_sampled_em``,
        see :meth:`sampled_em`).

        Returns:
            EM on the held-out questions, and on as many training questions (fit, not
            generalisation).
        """
        model = self.load(model_dir)
        self.figures[f"{phase}_sampled_em"] = self.sampled_em(model)
        splits = {
            "held_out": (self.test_factory, self.test),
            "train": (self.train_factory, self.train[: len(self.test)]),
        }
        em: dict[str, float] = {}
        hops: dict[str, float] = {}
        for split, (factory, questions) in splits.items():
            rollouts = run_policy(
                model,
                self.renderer,
                factory,
                questions,
                max_turns=self.s.max_turns,
                max_new_tokens=self.s.max_new_tokens,
                sample=False,
            )
            em[split] = sum(r.em for r in rollouts) / len(rollouts)
            first, second = hop_accuracy(rollouts, questions, self.tokenizer.decode)
            hops[f"{split}_person_searched"], hops[f"{split}_town_searched"] = first, second
        self.figures[f"{phase}_hops"] = hops
        return em["held_out"], em["train"]

    def sampled_em(self, model: Any) -> float:
        """Held-out EM of the policy sampled at ``dpo_temperature``, ``dpo_samples`` per question.

        Greedy EM saturates: a model that is right at greedy decoding on 57 of 60 questions
        leaves DPO three to win. How much probability the policy puts on right actions
        keeps moving after that, and this mean over samples (seeded, so two models see the
        same random draws) measures it.
        """
        rollouts = self.samples(model, self.test_factory, self.test)
        return sum(r.em for r in rollouts) / len(rollouts)

    def samples(self, model: Any, factory: Any, questions: Sequence[Any]) -> list[Rollout]:
        """``dpo_samples`` rollouts per question at ``dpo_temperature``, seeded."""
        import torch

        s = self.s
        repeated = [ex for ex in questions for _ in range(s.dpo_samples)]
        torch.manual_seed(s.seed)
        return run_policy(
            model,
            self.renderer,
            factory,
            repeated,
            max_turns=s.max_turns,
            max_new_tokens=s.max_new_tokens,
            sample=True,
            temperature=s.dpo_temperature,
        )

    @staticmethod
    def load(model_dir: Path) -> Any:
        """A saved (merged) causal LM in eval mode."""
        import transformers

        return transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def merged(self, adapter_dir: Path, name: str) -> Path:
        """The adapter merged into its base: the next phase's starting model."""
        from raggym.trainers.merge import merge_adapter

        return merge_adapter(adapter_dir, self.workdir / name)

    # -- phases ----------------------------------------------------------------------------

    def sft(self) -> None:
        """Oracle trajectories, one row per model turn, SFT, held-out EM."""
        from raggym.trainers.sft import SFTTrainConfig, train_sft

        decode = self.tokenizer.decode
        rows = []
        probe = self.train_factory()
        for example in self.train:
            for context, turn in oracle_rollout(self.renderer, probe, example).turns:
                rows.append({"prompt": decode(context), "completion": decode(turn)})
        config = SFTTrainConfig(
            model=str(self.base_dir),
            output_dir=str(self.workdir / "sft"),
            learning_rate=self.s.sft_lr,
            num_train_epochs=self.s.sft_epochs,
            per_device_batch_size=16,
            gradient_accumulation_steps=1,
            max_length=self.max_length,
            logging_steps=5,
            warmup_ratio=0.05,
            **self.lora(),
        )
        result = train_sft(config, rows)
        self.curves["sft_loss"] = result.losses
        self.figures["sft_rows"] = len(rows)
        self.figures["sft_final_loss"] = result.final_loss
        self.sft_dir = self.merged(result.adapter_dir, "sft_merged")
        held_out, train = self.greedy_em(self.sft_dir, "sft")
        self.figures["sft_held_out_em"], self.figures["sft_train_em"] = held_out, train

    def grpo(self) -> None:
        """GRPO from the SFT model in the env; reward per step; held-out EM after."""
        from raggym.trainers.grpo import GRPOTrainConfig, train_grpo

        s = self.s
        batch = s.grpo_questions_per_step * s.grpo_generations
        config = GRPOTrainConfig(
            model=str(self.sft_dir),
            output_dir=str(self.workdir / "grpo"),
            learning_rate=s.grpo_lr,
            max_steps=s.grpo_steps,
            per_device_batch_size=batch,
            gradient_accumulation_steps=1,
            num_generations=s.grpo_generations,
            max_completion_length=self.completion_budget,
            max_tool_calling_iterations=s.max_turns,
            temperature=1.0,
            logging_steps=1,
            task="custom",
            retriever="bm25",
            k=s.k,
            env_max_steps=s.max_turns,
            **self.lora(),
        )
        result = train_grpo(config, environment_factory=self.factory(self.train))
        rewards = [float(e["reward"]) for e in result.log_history if "reward" in e]
        if not rewards or not all(math.isfinite(r) for r in rewards):
            raise RuntimeError(f"GRPO logged no finite rewards: {rewards[:5]}")
        window = min(20, max(1, len(rewards) // 2))
        self.curves["grpo_reward"] = rewards
        self.curves["grpo_reward_moving_avg"] = moving_average(rewards, 10)
        self.figures["grpo_steps"] = len(rewards)
        self.figures["grpo_window"] = window
        self.figures["grpo_reward_first"] = sum(rewards[:window]) / window
        self.figures["grpo_reward_last"] = sum(rewards[-window:]) / window
        grpo_dir = self.merged(result.adapter_dir, "grpo_merged")
        held_out, train = self.greedy_em(grpo_dir, "grpo")
        self.figures["grpo_held_out_em"], self.figures["grpo_train_em"] = held_out, train

    def dpo(self) -> None:
        """Sample from the SFT model, pair right and wrong actions, DPO, held-out EM."""
        from raggym.trainers.dpo import DPOTrainConfig, train_dpo

        s = self.s
        model = self.load(self.sft_dir)
        rollouts = self.samples(model, self.preference_factory, self.preference)
        probe = self.preference_factory()
        oracles = {ex.id: oracle_rollout(self.renderer, probe, ex) for ex in self.preference}
        rows, from_oracle = preference_rows(rollouts, oracles, self.tokenizer.decode)
        self.figures["dpo_pairs_with_oracle_chosen"] = from_oracle
        self.figures["dpo_preference_sampled_em"] = sum(r.em for r in rollouts) / len(rollouts)
        self.figures["dpo_pairs"] = len(rows)
        self.figures["dpo_em_before"] = self.figures["sft_held_out_em"]
        if not rows:  # a policy without mistakes: a result to report, not a broken phase
            self.skipped["dpo"] = (
                f"all {len(rollouts)} rollouts sampled on the preference questions were "
                "correct: nothing to prefer, so DPO did not train"
            )
            return
        config = DPOTrainConfig(
            model=str(self.sft_dir),
            output_dir=str(self.workdir / "dpo"),
            learning_rate=s.dpo_lr,
            num_train_epochs=s.dpo_epochs,
            beta=s.dpo_beta,
            sft_weight=s.dpo_sft_weight,
            per_device_batch_size=8,
            gradient_accumulation_steps=1,
            max_length=self.max_length,
            logging_steps=1,
            **self.lora(),
        )
        result = train_dpo(config, rows)
        self.curves["dpo_loss"] = result.losses
        dpo_dir = self.merged(result.adapter_dir, "dpo_merged")
        held_out, train = self.greedy_em(dpo_dir, "dpo")
        self.figures["dpo_em_after"], self.figures["dpo_train_em_after"] = held_out, train


def preference_rows(
    rollouts: Sequence[Rollout], oracles: dict[str, Rollout], decode: Callable[[list[int]], str]
) -> tuple[list[dict[str, str]], int]:
    """One DPO row per (correct, incorrect) pair of samples of one question.

    A question none of whose samples is correct pairs its wrong samples with its oracle
    trajectory instead; how many rows did so is returned with the rows.

    The pair is taken at the first model turn where the two differ: up to there both saw
    the same context (retrieval is deterministic), so chosen and rejected are two actions
    in one state. Each question gives at most as many pairs as it has wrong samples.
    """
    by_question: dict[str, list[Rollout]] = {}
    for rollout in rollouts:
        by_question.setdefault(rollout.example_id, []).append(rollout)
    rows = []
    from_oracle = 0
    for key, group in by_question.items():
        right = [r for r in group if r.em == 1.0]
        wrong = [r for r in group if r.em != 1.0]
        oracle = not right
        if oracle:
            right = [oracles[key]]
        for index, bad in enumerate(wrong):
            good = right[index % len(right)]
            for (context, good_turn), (bad_context, bad_turn) in zip(
                good.turns, bad.turns, strict=False
            ):
                if context != bad_context:
                    break
                if good_turn != bad_turn:
                    rows.append(
                        {
                            "prompt": decode(context),
                            "chosen": decode(good_turn),
                            "rejected": decode(bad_turn),
                        }
                    )
                    from_oracle += oracle
                    break
    return rows, from_oracle


def hop_accuracy(
    rollouts: Sequence[Rollout], examples: Sequence[Any], decode: Callable[[list[int]], str]
) -> tuple[float, float]:
    """Fractions of rollouts whose first turn searched the person and second the town."""
    first = second = 0
    for rollout, example in zip(rollouts, examples, strict=True):
        calls = [parse_call(decode(turn)) for _, turn in rollout.turns[:2]]
        queries = [str(c[1].get("query", "")) if c and c[0] == "search" else "" for c in calls]
        first += len(queries) > 0 and example.meta["person"] in queries[0]
        second += len(queries) > 1 and example.meta["town"] in queries[1]
    return first / len(rollouts), second / len(rollouts)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values."""
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def plot(curves: dict[str, list[float]], path: Path) -> None:
    """GRPO mean reward per step with its moving average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rewards = curves.get("grpo_reward") or []
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = list(range(1, len(rewards) + 1))
    ax.plot(steps, rewards, alpha=0.4, label="mean reward per step")
    ax.plot(steps, curves.get("grpo_reward_moving_avg") or [], label="moving average (10)")
    ax.set_xlabel("GRPO optimizer step")
    ax.set_ylabel("mean rollout reward (EM)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    ax.set_title("GRPO from the SFT model, synthetic two-hop task")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def show(value: Any, digits: int = 3, missing: str = "failed") -> str:
    """A figure for the report; missing or non-finite figures read ``missing``."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return missing


def report(phases: Phases, cores: int, total_min: float) -> str:
    """The Markdown report."""
    f, m = phases.figures, phases.minutes
    window = f.get("grpo_window", 20)
    missing = {phase: "not run" if phase in phases.skipped else "failed" for phase in PHASES}

    def after(phase: str, name: str) -> str:
        return show(f.get(name), missing=missing[phase])

    lines = [
        "## Learning on a synthetic two-hop task",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {cores} CPU cores, "
        f"torch threads {phases_threads()}; Python {platform.python_version()}.",
        f"Task: {show(f.get('train_questions'))} training (SFT, GRPO) / "
        f"{show(f.get('preference_questions'))} preference (DPO sampling) / "
        f"{show(f.get('held_out_questions'))} held-out questions, "
        f"{show(f.get('documents'))} documents, BM25 k={phases.s.k}. "
        f"Model: {show(f.get('parameters'))} parameters ({phases.s.layers} layers, hidden "
        f"{phases.s.hidden}), vocabulary {show(f.get('vocab'))}.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| SFT held-out EM (greedy, tool loop) | {show(f.get('sft_held_out_em'))} |",
        f"| SFT training-question EM (greedy) | {show(f.get('sft_train_em'))} |",
        f"| GRPO mean reward, first {window} steps | {show(f.get('grpo_reward_first'))} |",
        f"| GRPO mean reward, last {window} steps | {show(f.get('grpo_reward_last'))} |",
        f"| held-out EM after GRPO | {show(f.get('grpo_held_out_em'))} |",
        f"| training-question EM after GRPO | {show(f.get('grpo_train_em'))} |",
        f"| DPO pairs (from {phases.s.dpo_samples} samples per preference question) | "
        f"{show(f.get('dpo_pairs'))} |",
        f"| held-out EM before DPO (the SFT model) | {show(f.get('dpo_em_before'))} |",
        f"| held-out EM after DPO | {after('dpo', 'dpo_em_after')} |",
        f"| training-question EM after DPO | {after('dpo', 'dpo_train_em_after')} |",
        f"| held-out EM sampled at T {phases.s.dpo_temperature:g}, {phases.s.dpo_samples} per "
        f"question: SFT / GRPO / DPO | {show(f.get('sft_sampled_em'))} / "
        f"{show(f.get('grpo_sampled_em'))} / {after('dpo', 'dpo_sampled_em')} |",
        f"| chance EM (one country of {phases.s.countries}) | {1 / phases.s.countries:.3f} |",
        "",
        "Greedy rollouts hop by hop (held-out / training questions): did the first call",
        "search the person's name, and the second the town the documents named?",
        "",
        "| model | person searched | town searched |",
        "|---|---:|---:|",
    ]
    for phase in PHASES[1:]:
        hops = f.get(f"{phase}_hops") or {}
        person, town = (
            [show(hops.get(f"{split}_{hop}_searched"), missing=missing[phase]) for split in SPLITS]
            for hop in ("person", "town")
        )
        lines.append(f"| after {phase.upper()} | {' / '.join(person)} | {' / '.join(town)} |")
    lines += [
        "",
        "| phase | minutes |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {minutes:.2f} |" for name, minutes in m.items()]
    lines.append(f"| total | {total_min:.2f} |")
    for name, why in phases.failures.items():
        lines.append(f"\nPhase {name} FAILED: {why}")
    for name, why in phases.skipped.items():
        lines.append(f"\nPhase {name} not run: {why}")
    return "\n".join(lines)


def phases_threads() -> int:
    """The intra-op thread count of torch."""
    import torch

    return int(torch.get_num_threads())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    d = Settings()
    parser.add_argument("--out", type=Path, default=None, help="write learning.json and the PNG")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: runs end to end fast")
    parser.add_argument("--seed", type=int, default=0, help="world, split and training seed")
    parser.add_argument(
        "--sft-epochs", type=float, default=None, help=f"SFT passes (default {d.sft_epochs:g})"
    )
    parser.add_argument(
        "--grpo-steps", type=int, default=None, help=f"GRPO steps (default {d.grpo_steps})"
    )
    parser.add_argument("--people", type=int, default=None, help="questions (one per person)")
    parser.add_argument("--held-out", type=int, default=None, help="held-out questions")
    parser.add_argument(
        "--hidden", type=int, default=None, help=f"model width (default {d.hidden})"
    )
    parser.add_argument(
        "--layers", type=int, default=None, help=f"model layers (default {d.layers})"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """Defaults, shrunk by ``--quick``, then the explicit flags."""
    s = Settings(seed=args.seed)
    if args.quick:
        s.people, s.held_out, s.dpo_questions, s.towns, s.hidden, s.heads = 16, 4, 3, 4, 64, 2
        s.name_pool = 4
        s.sft_epochs, s.grpo_steps, s.dpo_samples, s.dpo_epochs = 2.0, 2, 2, 1.0
        s.grpo_questions_per_step, s.grpo_generations, s.max_new_tokens = 2, 2, 24
    for name in ("sft_epochs", "grpo_steps", "people", "held_out", "hidden", "layers"):
        value = getattr(args, name)
        if value is not None:
            setattr(s, name, value)
    return s


def main(argv: Sequence[str] | None = None) -> int:
    """Run every phase, print the report, write the JSON and PNG; non-zero if one failed."""
    args = parse_args(argv)
    settings = settings_from(args)
    import torch

    cores = os.cpu_count() or 1
    torch.set_num_threads(args.threads or cores)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="raggym-learning-") as tmp:
        phases = Phases(settings, Path(tmp))
        ok = phases.timed("setup", phases.setup)
        ok = ok and phases.timed("sft", phases.sft)
        if ok:
            phases.timed("grpo", phases.grpo)
            phases.timed("dpo", phases.dpo)
    total = (time.perf_counter() - start) / 60
    text = report(phases, cores, total)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        data = {
            "settings": settings.__dict__,
            "figures": phases.figures,
            "curves": phases.curves,
            "minutes": {**phases.minutes, "total": total},
            "failures": phases.failures,
            "skipped": phases.skipped,
            "cores": cores,
        }
        (args.out / "learning.json").write_text(json.dumps(data, indent=2) + "\n")
        if phases.curves.get("grpo_reward"):
            plot(phases.curves, args.out / "grpo_reward.png")
    return 1 if phases.failures or any(p not in phases.minutes for p in PHASES) else 0


if __name__ == "__main__":
    sys.exit(main())
