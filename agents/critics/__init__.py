"""Critics: score candidate actions (reward model, LLM judge, gold evidence, callable)."""
