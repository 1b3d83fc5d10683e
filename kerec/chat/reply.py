"""The assistant's words: a templated reply, or the LLM's reply to ``prompts/chat.yaml`` checked like an
explanation.

Evidence is numbered across the whole reply: the first ``FACTS_PER_ITEM`` evidence of pick 1 are [1],
[2], those of pick 2 follow, and so on (:class:`Reference`). The LLM sees the conversation (the person's
words as data inside the prompt), the picks lettered A… and the numbered evidence. Its reply is shown only
when it cites at least one number, every number is a reference, every cited reference passes
:func:`kerec.explain.check` for its own pick (its facts exist in the graph store and link the pick to the
liked items, or are the pick's own attributes), it names no film that is not a pick, not in a cited fact
and not named by the person, every proper name in it is written in a cited fact, a pick's title or the
person's words, each cited fact is used (one of its content words is in the reply), and it holds no markup (``<``/``>``). Otherwise the templated reply, whose
citations are correct by construction.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kerec.chat.catalogue import Catalogue
from kerec.explain import TitleIndex, check, citations, prose_reason
from kerec.kg.evidence import Evidence, join_words
from kerec.kg.store import GraphStore
from kerec.kg.summary import summarise

if TYPE_CHECKING:
    from kerec.api import Recommendation
    from kerec.chat.parse import Parsed
    from kerec.chat.state import SessionState

FACTS_PER_ITEM = 3  # evidence per pick the reply numbers; the templated reply sums them up in one sentence
CONVERSATION_TURNS = 6  # most recent turns shown to the LLM


@dataclass(frozen=True)
class Reference:
    """Reply citation ``[n]``: the ``local``-th (1-based) evidence of pick ``item_id``."""

    n: int
    item_id: str
    local: int
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "item_id": self.item_id, "text": self.evidence.text, "kind": self.evidence.kind,
                "fact_ids": list(self.evidence.fact_ids)}


def references(recs: Sequence[Recommendation]) -> tuple[Reference, ...]:
    out: list[Reference] = []
    for r in recs:
        for local, e in enumerate(r.evidence[:FACTS_PER_ITEM], 1):
            out.append(Reference(len(out) + 1, r.item_id, local, e))
    return tuple(out)


def check_reply(text: str, refs: Sequence[Reference], recs: Sequence[Recommendation], store: GraphStore,
                history: Collection[str], *, titles: TitleIndex | None = None, said: str = "") -> str | None:
    """None when ``text`` is grounded (module docstring), else the reason. With ``titles``, the reply may
    name only films that are picks, that a cited fact concerns, or that the person named (``said``)."""
    if "<" in text or ">" in text:
        return "contains markup"
    tokens = citations(text)
    if not tokens:
        return "cites no evidence"
    by_n = {r.n: r for r in refs}
    cited: dict[str, set[int]] = {}
    for tok in tokens:
        if not tok.isdigit() or int(tok) not in by_n:
            return f"cites [{tok}], which is not one of the references [1]..[{len(refs)}]"
        ref = by_n[int(tok)]
        cited.setdefault(ref.item_id, set()).add(ref.local)
    evidence = {r.item_id: r.evidence for r in recs}
    for item, locals_ in cited.items():
        _, reason = check("".join(f"[{n}]" for n in sorted(locals_)), evidence[item], store, history, item)
        if reason is not None:
            return f"{item}: {reason}"
    if titles is not None:
        fact_ids = [f for item, locals_ in cited.items() for n in locals_ for f in evidence[item][n - 1].fact_ids]
        allowed = {r.item_id for r in recs} | {node.id for fact in store.facts(fact_ids).values()
                                               for node in (fact.head, fact.tail) if node.label == "Item"}
        return prose_reason(text, titles, allowed, [(n, by_n[n].evidence) for n in dict.fromkeys(map(int, tokens))],
                            said=said)
    return None


def chat_messages(log: Sequence[tuple[str, str]], recs: Sequence[Recommendation],
                  refs: Sequence[Reference]) -> list[dict[str, str]]:
    from kerec.prompting import chat_inputs, load_prompt

    facts = [(str(r.n), r.evidence.text) for r in refs]
    return load_prompt("chat").messages(**chat_inputs(list(log[-CONVERSATION_TURNS:]), [r.title for r in recs], facts))


# ---------------------------------------------------------------------------------------------- templates
def constraint_phrase(state: SessionState, catalogue: Catalogue) -> str:
    """``"like Fargo (1996); Comedy; no Horror; 1990–1999"`` — the hard constraints and liked items."""
    parts = []
    if state.liked:
        parts.append("like " + join_words([catalogue.titles[i] for i in list(state.liked)[-3:]]))
    if state.genres_in:
        parts.append(" and ".join(state.genres_in))
    if state.genres_out:
        parts.append("no " + join_words(state.genres_out, "or"))
    if state.year_min is not None and state.year_max is not None:
        parts.append(f"{state.year_min}" if state.year_min == state.year_max else f"{state.year_min}–{state.year_max}")
    elif state.year_min is not None:
        parts.append(f"{state.year_min} or later")
    elif state.year_max is not None:
        parts.append(f"{state.year_max} or earlier")
    for lo, hi in state.years_out:
        parts.append(f"not {lo}–{hi}")
    soft = [g for g, w in sorted(state.soft_genres.items(), key=lambda x: -x[1]) if w > 0][:2]
    if soft:
        parts.append("leaning " + join_words(soft, "and"))
    if state.soft_year:
        parts.append("newer" if state.soft_year > 0 else "older")
    return "; ".join(parts)


def acknowledgement(parsed: Parsed, catalogue: Catalogue) -> str:
    """What this message was understood to say, and what was not found."""
    said = []
    for polarity, verb in (("like", "you liked"), ("dislike", "you disliked"), ("exclude", "leaving out")):
        titles = [catalogue.titles[m.item] for m in parsed.mentions if m.polarity == polarity]
        if titles:
            said.append(f"{verb} {join_words(titles)}")
    out = f"Noted: {'; '.join(said)}. " if said else ""
    if parsed.not_found:
        out += f"I could not find {join_words([f'“{t}”' for t in parsed.not_found], 'or')} in the catalogue. "
    return out


def template_reply(ack: str, state: SessionState, catalogue: Catalogue, recs: Sequence[Recommendation],
                   refs: Sequence[Reference]) -> str:
    phrase = constraint_phrase(state, catalogue)
    lines = [f"{ack}Here {'is' if len(recs) == 1 else 'are'} {len(recs)} pick{'s' * (len(recs) != 1)}"
             f"{f' ({phrase})' if phrase else ''}:"]
    for rank, r in enumerate(recs, 1):
        own = {ref.local: ref.n for ref in refs if ref.item_id == r.item_id}
        reason = ""
        if own:  # one sentence per pick, citing the reply's numbers (kerec.kg.summary)
            said = summarise([ref.evidence for ref in refs if ref.item_id == r.item_id], number=own.__getitem__).text
            reason = said[:-1] if said.endswith(".") else said
        if not reason:
            reason = "no fact in the knowledge graph links it to what you liked; " + (
                "ranked by similar people's tastes" if r.basis == "gnn" else "one of the most watched that fit")
        lines.append(f"{rank}. {r.title} — {reason}")
    return "\n".join(lines)


def question_text(catalogue: Catalogue, ack: str = "") -> str:
    examples = ", ".join(sorted(catalogue.genre_names, key=lambda g: -int(catalogue.genres[:, catalogue.genre_index(g)].sum()))[:3])
    genre = f"a genre (e.g. {examples}), " if examples else ""
    return (f"{ack}What are you in the mood for? Tell me a film you liked, {genre}or a period "
            "(e.g. “the 90s”, “nothing before 1990”).")


def no_match_text(ack: str, state: SessionState, catalogue: Catalogue) -> str:
    return (f"{ack}Nothing in the catalogue fits all of that ({constraint_phrase(state, catalogue)}). Could you "
            "relax something — drop a genre, widen the years, or name another film you liked?")
