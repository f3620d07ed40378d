"""Evaluations of the twin: voice (perplexity + style), RAG (retrieval + judged answers),
retrieval, and the promotion gate. CLI: `python -m evals voice|rag|retrieval|gate`."""
