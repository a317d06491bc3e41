"""Bring your own corpus: generate questions with gold evidence, then play them as a task.

1. ``synthesize`` writes factual, bridge and comparison questions from a corpus (here a
   slice of the bundled 2WikiMultihopQA sample's paragraphs) into ``synthetic_qa.jsonl``
   with ``.train.jsonl`` / ``.eval.jsonl`` splits and a ``.summary.json`` of what each
   filter dropped.
2. ``RAGGym/Custom-v0`` plays the eval split with a RAG agent; EM, F1 and gold-evidence
   recall are printed.
3. The RAG quality metrics: context precision and recall against the gold evidence
   (``raggym_env.rag_metrics``, no model) and faithfulness, answer relevance and context
   relevance from a judge LLM (``raggym.agents.judge.RAGJudge``).

Without ``--llm`` both the generator and the agent are rule-based stand-ins (the testing
kit's ``SynthResponder``, with its share of malformed and adversarial replies, and a
``MockLLM`` that answers with the first year of the top document, and a rule-based judge
that calls an answer supported when its words appear in the documents), so the script
runs offline in seconds. With ``--llm openai:URL:MODEL`` (or ``hf:PATH``) one real model
does all three.

Run: python examples/synthetic_qa.py [--llm openai:URL:MODEL] [--out DIR]
"""

import argparse
import re
from pathlib import Path

import gymnasium

from raggym.agents.judge import RAGJudge, failure_counts
from raggym.agents.rag import RAGAgent
from raggym.agents.registry import make_llm
from raggym.agents.rollout import rollout
from raggym.testing.llms import MockLLM
from raggym.testing.synth import scripted_synth_llm
from raggym.trainers.synth import SynthConfig, synthesize
from raggym_env.rag_metrics import episode_rag_metrics
from raggym_env.tasks import load_task


def scripted_answer(conversation):
    """Stand-in agent model: the first year of the top document, else its title."""
    prompt = conversation[-1]["content"]
    titles = re.findall(r"^\[\d+\] Title: (.*)$", prompt, re.MULTILINE)
    years = re.findall(r"\b1[0-9]{3}\b|\b20[0-9]{2}\b", prompt.split("Title:", 2)[-1])
    if " or " in prompt and titles:
        return f"Comparing the documents.\nAnswer: {titles[0]}"
    return f"The top document gives a year.\nAnswer: {years[0] if years else 'unknown'}"


def scripted_judge(conversation):
    """Stand-in judge: supported if the answer is in the documents; relevant if a document
    shares a word of four letters or more with the question; every answer graded 4 of 5."""
    prompt = conversation[-1]["content"]
    if prompt.startswith("Documents:"):
        documents, _, rest = prompt.partition("\nQuestion: ")
        answer = rest.split("\nAnswer: ", 1)[-1].split("\n", 1)[0].strip().lower()
        supported = bool(answer) and answer in documents.lower()
        return f"Verdict: {'SUPPORTED' if supported else 'UNSUPPORTED'}"
    if "Document:\n" in prompt:
        question, _, document = prompt.partition("Document:\n")
        words = {w for w in re.findall(r"[a-z]{4,}", question.lower()) if w != "question"}
        shared = words & set(re.findall(r"[a-z]{4,}", document.lower()))
        return f"Verdict: {'RELEVANT' if shared else 'IRRELEVANT'}"
    return "Score: 4"


def main(llm_spec=None, out_dir="."):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus_file = out / "synthetic_qa_corpus.jsonl"
    corpus = load_task("2wikimultihopqa", limit=40).corpus  # the bundled sample's paragraphs
    corpus.save_jsonl(corpus_file)

    llm = make_llm(llm_spec) if llm_spec else scripted_synth_llm()
    config = SynthConfig(factual=20, bridge=20, comparison=20, eval_fraction=0.5, seed=0)
    report = synthesize(corpus, llm, config, out / "synthetic_qa.jsonl", show_progress=False)
    print(report.table(), end="\n\n")

    env = gymnasium.make(
        "RAGGym/Custom-v0",
        data_path=report.paths["eval"],
        corpus=str(corpus_file),
        k=3,
    )
    agent_llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_answer, name="scripted")
    records = rollout(env, RAGAgent(agent_llm, doc_words=80), show_progress=False)
    env.close()
    played = [r for r in records if r.error is None]

    def mean(values):
        """Mean over the values that exist; "n/a" when there are none (never NaN)."""
        values = [v for v in values if v is not None]
        return f"{sum(values) / len(values):.3f} (n={len(values)})" if values else "n/a"

    print(f"played {len(played)} of {len(records)} eval questions")
    for name in ("em", "f1", "evidence_recall"):
        print(f"{name:>18}: {mean(r.metrics.get(name) for r in played)}")

    # RAG quality metrics: against the gold evidence (no model), then a judge LLM's.
    context = [episode_rag_metrics(r) for r in played]
    for name in ("context_precision", "context_recall"):
        print(f"{name:>18}: {mean(m[name] for m in context)}")
    judge_llm = make_llm(llm_spec) if llm_spec else MockLLM(scripted_judge, name="judge")
    texts = {doc.id: doc.text for doc in corpus}
    judged = RAGJudge(judge_llm).score(played, documents=texts)
    for name in ("faithfulness", "answer_relevance", "context_relevance"):
        print(f"{name:>18}: {mean(j[name] for j in judged)}")
    print(f"{'judge failures':>18}: {dict(failure_counts(judged)) or 'none'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", metavar="SPEC", help="openai:URL:MODEL or hf:PATH (default: mock)")
    parser.add_argument("--out", default=".", help="folder for the question files")
    args = parser.parse_args()
    main(args.llm, args.out)
