"""Evaluations of the twin: voice (perplexity + style), RAG (retrieval + judged answers),
retrieval, and the promotion gate. CLI: `python -m evals voice|rag|retrieval|gate`."""

import os

# Opik's SDK reports usage analytics unless told not to; this project never phones home.
os.environ.setdefault("OPIK_ANALYTICS_ENABLE", "false")
