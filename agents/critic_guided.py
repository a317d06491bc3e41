"""Critic-guided action selection (Re2Search++ when wrapped around Re2Search).

At every step the wrapped LLM agent samples ``n`` candidate outputs (default 10 at
temperature 1.0, as in the RAG-Gym paper), a critic scores the parsed candidates of all
live episodes in one call, and the best-scoring candidate is taken. Every candidate is
recorded in the step with its score, the scorer's name and raw output, which is what
process-supervision training reads back.

Choice rule: the highest score among candidates that parsed and were scored; ties go to
the action proposed most often, then to the earliest sample. If the critic fails on every
candidate, the most frequently proposed parsed action is taken (a majority vote) and the
failure stays recorded on each candidate; if nothing parsed, the first sample is sent and
the step is invalid, as for the unwrapped agent.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import Any

from raggym.agents.base import Agent, Decision, LLMAgent, Memory, Proposal
from raggym.agents.critics.base import Critic, CriticItem, CriticScore, action_text
from raggym_env.actions import action_to_dict
from raggym_env.episode import Candidate
from raggym_env.observation import Observation

__all__ = ["CriticGuidedAgent"]


class CriticGuidedAgent(Agent):
    """Sample ``n`` actions from ``actor`` and follow the one ``critic`` scores best.

    Args:
        actor: the LLM agent that proposes (its prompt, parser and memory are used as is).
        critic: scores the candidates (reward model, LLM judge, gold evidence, callable).
        n: candidates sampled per step.
        temperature: sampling temperature for the candidates.
        top_p: nucleus mass for the candidates.
        name: the agent's name (default ``"<actor>+critic"``; ``re2search`` gives
            ``re2search++``).
    """

    def __init__(
        self,
        actor: LLMAgent,
        critic: Critic,
        *,
        n: int = 10,
        temperature: float = 1.0,
        top_p: float = 1.0,
        name: str | None = None,
    ) -> None:
        if not isinstance(actor, LLMAgent):
            raise TypeError(f"actor must be an LLMAgent, got {type(actor).__name__}")
        if not hasattr(critic, "score"):
            raise TypeError(f"critic must have a score(groups) method, got {critic!r}")
        self.actor = actor
        self.critic = critic
        self.params = dataclasses.replace(actor.params, n=n, temperature=temperature, top_p=top_p)
        default = "re2search++" if actor.name == "re2search" else f"{actor.name}+critic"
        self.name = name or default

    def start(self, example: Any) -> Memory:
        """Start the actor's memory for the episode."""
        return self.actor.start(example)

    def act_batch(
        self, observations: Sequence[Observation], memories: Sequence[Memory]
    ) -> list[Decision]:
        """Sample candidates for every episode in one call, score them in one critic call."""
        return self.actor.decide_batch(observations, memories, self.params, self._choose)

    def _choose(
        self,
        observations: Sequence[Observation],
        memories: Sequence[Memory],
        proposals: Sequence[Sequence[Proposal]],
    ) -> list[tuple[int, Sequence[Candidate]]]:
        groups = []
        for observation, memory, group in zip(observations, memories, proposals, strict=True):
            view = tuple(self.actor.history_view(observation, memory) or ())
            groups.append(
                [
                    CriticItem(
                        observation,
                        p.text,
                        p.parsed.action,
                        prompt=p.messages,
                        example=memory.example,
                        summaries=view,
                    )
                    for p in group
                    if p.parsed.action is not None
                ]
            )
        try:
            scores = self.critic.score(groups) if any(groups) else [[] for _ in groups]
        except (RuntimeError, ValueError, OSError) as exc:
            failure = CriticScore(None, error=f"{type(exc).__name__}: {exc}")
            scores = [[failure] * len(group) for group in groups]
        if len(scores) != len(groups) or any(
            len(s) != len(g) for s, g in zip(scores, groups, strict=True)
        ):
            raise RuntimeError(
                f"critic {getattr(self.critic, 'name', '?')!r} returned scores that do not "
                "match the candidates it was given"
            )
        return [
            self._pick(group, iter(group_scores))
            for group, group_scores in zip(proposals, scores, strict=True)
        ]

    def _pick(self, proposals: Sequence[Proposal], scores: Any) -> tuple[int, Sequence[Candidate]]:
        scorer = getattr(self.critic, "name", type(self.critic).__name__)
        candidates: list[Candidate] = []
        scored: list[tuple[float, int]] = []
        keys = [action_text(p.parsed.action, p.text) for p in proposals]
        votes = Counter(k for k, p in zip(keys, proposals, strict=True) if p.parsed.action)
        for j, proposal in enumerate(proposals):
            if proposal.parsed.action is None:
                candidates.append(Candidate(proposal.text, None, error=proposal.parsed.error))
                continue
            verdict: CriticScore = next(scores)
            candidates.append(
                Candidate(
                    proposal.text,
                    action_to_dict(proposal.parsed.action),
                    score=verdict.score,
                    scorer=scorer,
                    scorer_output=verdict.output,
                    error=verdict.error,
                )
            )
            if verdict.score is not None:
                scored.append((verdict.score, j))
        if scored:
            best = max(scored, key=lambda sj: (sj[0], votes[keys[sj[1]]], -sj[1]))
            return best[1], candidates
        parsed = [j for j, p in enumerate(proposals) if p.parsed.action is not None]
        if parsed:
            return max(parsed, key=lambda j: (votes[keys[j]], -j)), candidates
        return 0, candidates

    def describe(self) -> dict[str, Any]:
        """The actor's description plus the critic and the sampling settings."""
        return {
            **self.actor.describe(),
            "agent": self.name,
            "class": type(self).__name__,
            "actor": self.actor.name,
            "critic": getattr(self.critic, "name", type(self.critic).__name__),
            "n": self.params.n,
            "temperature": self.params.temperature,
        }
