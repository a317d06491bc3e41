"""Ask mode: an agent answers a typed question in a worker thread, one event per step.

The choices are fixed when the studio starts (tasks, agents and LLM endpoints named on the
command line), so a browser can pick among them but never make the server reach an
address of its choosing. Each step is emitted as it is taken (``step``), then the whole
episode (``episode``) or the failure (``failed``); a crash of the agent or the backend is
recorded in the episode, never raised into the server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from raggym.agents.base import Agent
from raggym.agents.rollout import as_agent, run_episode
from raggym_env.env import RAGEnv
from raggym_env.types import Evidence, QAExample

__all__ = ["NO_GOLD", "Asker", "typed_example"]

NO_GOLD = "(no gold answer given)"
"""The gold answer of a question typed without one; such episodes carry no metrics."""

EnvMaker = Callable[[str], RAGEnv]
AgentMaker = Callable[[str, str], Agent]


def typed_example(number: int, question: str, answer: str = "") -> QAExample:
    """A question typed in the studio, as a :class:`QAExample` (id ``ask-N``)."""
    return QAExample(
        f"ask-{number}", question, (answer or NO_GOLD,), evidence=Evidence(), meta={"typed": True}
    )


@dataclasses.dataclass
class Asker:
    """Runs one agent on one typed question, reporting each step to a job.

    Args:
        tasks: task (corpus) names the user may pick.
        agents: agent names the user may pick.
        llms: LLM specs (or labels) the user may pick.
        make_env: ``make_env(task)`` -> a fresh environment over that task's corpus.
        make_agent: ``make_agent(agent, llm)`` -> the agent on that backend.
    """

    tasks: Sequence[str]
    agents: Sequence[str]
    llms: Sequence[str]
    make_env: EnvMaker
    make_agent: AgentMaker
    _count: int = 0

    def choices(self) -> dict[str, list[str]]:
        """What the Ask form offers."""
        return {"tasks": list(self.tasks), "agents": list(self.agents), "llms": list(self.llms)}

    def check(self, *, task: str, agent: str, llm: str) -> None:
        """Refuse a choice that was not offered."""
        for what, value, allowed in (
            ("task", task, self.tasks),
            ("agent", agent, self.agents),
            ("llm", llm, self.llms),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; choose one of {list(allowed)}")

    def run(self, job: Any, question: str, answer: str, *, task: str, agent: str, llm: str) -> None:
        """Answer ``question`` and emit ``step`` events, then ``episode`` (or ``failed``)."""
        self._count += 1
        example = typed_example(self._count, question, answer)
        try:
            record = self._play(job, example, task=task, agent=agent, llm=llm)
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the page
            job.emit("failed", {"error": f"{type(exc).__name__}: {exc}"})
        else:
            if not answer:  # no gold: no metric means anything
                record = dataclasses.replace(
                    record, metrics={}, gold={**record.gold, "answers": []}
                )
            record = dataclasses.replace(
                record, extra={**record.extra, "task": task, "llm": llm, "asked": True}
            )
            job.record = record
            job.emit("episode", record.to_dict())
        finally:
            job.done = True

    def _play(self, job: Any, example: QAExample, *, task: str, agent: str, llm: str) -> Any:
        env = self.make_env(task)
        actor = as_agent(self.make_agent(agent, llm))
        job.emit("started", {"question": example.question, "agent": actor.name})
        return run_episode(
            env,
            actor,
            options={"example": example},
            on_step=lambda step: job.emit("step", step.to_dict()),
        )
