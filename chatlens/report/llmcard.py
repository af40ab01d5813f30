"""Cards for language-model scorers in the report: model, endpoint, prompt hash, answers, and
the accuracy measured on the audit sample (the LLM's codes against the human labels)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatlens.project import Project


def llm_cards(p: Project, cb: Any) -> list[dict[str, str]]:
    """One card (``name``, markdown ``card``) per ``llm`` scorer of the codebook."""
    from chatlens.code.llm import build_prompt
    from chatlens.codebook import LlmScorer
    from chatlens.estimate import audit_estimate
    from chatlens.project.estimate import measure_labels
    from chatlens.store.frames import scores_for
    from chatlens.store.llmcache import LLM_CACHE_DB, LlmCache

    cards = []
    cache_path = p.root / LLM_CACHE_DB
    cache = LlmCache(p.root) if cache_path.is_file() else None
    try:
        for m in cb.measures:
            for sc in m.scorers:
                if not isinstance(sc, LlmScorer):
                    continue
                prompt = build_prompt(m, sc)
                lines = [f"Measure: {m.id}", f"Model: {sc.model}", f"Endpoint: {sc.base_url}",
                         f"Prompt hash: {prompt.hash}", f"Temperature: {sc.temperature}",
                         f"Answers as: {sc.response_format}; log-probabilities "
                         f"{'requested' if sc.logprobs else 'not requested'}"]
                if cache is not None:
                    counts = {r["status"]: r["n"] for r in cache.summary()
                              if r["prompt_hash"] == prompt.hash and r["model"] == sc.model}
                    lines.append(f"Cached answers: {counts.get('ok', 0):,} valid, "
                                 f"{counts.get('invalid', 0):,} invalid (no code, never guessed)")
                audit = measure_labels(p, cb.name, m.id).audit
                codes = {r["uid"]: r["value"] for r in
                         scores_for(p.store, cb.name, m.id, sorted(audit)).to_pylist()}
                both = [u for u in audit if codes.get(u) is not None]
                if both:
                    agree = [1.0 if codes[u] == audit[u] else 0.0 for u in both]
                    est = audit_estimate(agree, None)
                    lines.append(f"Audited accuracy: {100 * est.point:.1f}% "
                                 f"[{100 * est.lower:.1f}, {100 * est.upper:.1f}] on {len(both)} "
                                 "audit-sample messages (its codes against the human labels)")
                else:
                    lines.append("Audited accuracy: no audit labels yet")
                lines.append("Its codes enter estimates like any model's scores: the audit "
                             "sample corrects them (PPI), so the interval is valid whatever "
                             "the model's errors.")
                cards.append({"name": f"llm {sc.model} ({m.id})", "card": "\n".join(lines)})
    finally:
        if cache is not None:
            cache.close()
    return cards
