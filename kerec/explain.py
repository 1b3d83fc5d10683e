"""Grounded explanations: the LLM explains a pick citing numbered evidence, every citation is checked
against the graph store, and an explanation that fails the check is never shown.

Evidence is numbered ``[1]..[m]`` in the prompt (short numbers suit small LLMs better than 17-character
fact ids); each number stands for one :class:`~kerec.kg.evidence.Evidence` and so for its fact ids. An
explanation is *grounded* when it cites at least one number, every number it cites is one of the item's
evidence, and every fact behind those numbers exists in the store and links the user's history to the item
(a path from a history item) or belongs to the item (its own attribute). With a :class:`TitleIndex` the prose
is checked too: it may name only films the cited facts concern, and every proper name in it (a run of two or
more capitalised words, "James Earl Jones") must be written in a cited fact or the item's title, so that an
explanation cannot attach an invented cast or director to real citations; and each cited fact must be used:
the text holds at least one of its content words (:func:`content_words`), so that "[1] and [2] are
recommended" does not pass. The paths taken, recorded in
:attr:`Explanation.source`:

* ``"llm"`` — the first generation was grounded;
* ``"llm-retry"`` — the first was not; a second one, given only the top evidence, was;
* ``"template"`` — neither was: the explanation is built from the top evidence's own text;
* ``"none"`` — the item has no evidence at all: a fixed sentence says so, citing nothing.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from kerec.kg.evidence import Evidence
from kerec.kg.model import NodeRef
from kerec.kg.store import GraphStore
from kerec.kg.summary import summarise

CITATION = re.compile(r"\[([^\[\]]{1,24})\]")
SOURCES = ("llm", "llm-retry", "template", "none")
NO_EVIDENCE = "No fact in the knowledge graph links this title to your history; it was ranked by similar users' tastes."


@dataclass(frozen=True)
class Explanation:
    text: str
    source: str  # one of SOURCES
    cited: tuple[int, ...]  # 1-based evidence numbers cited (checked)
    fact_ids: tuple[str, ...]  # the facts behind them, all found in the store
    rejected: tuple[str, ...] = ()  # generations that failed the check, with the reason


def citations(text: str) -> list[str]:
    """The bracketed tokens of ``text`` in order: ``"a [1] b [2][x]"`` → ``["1", "2", "x"]``;
    comma lists inside one bracket (``[1, 3]``) count as several."""
    out = []
    for group in CITATION.findall(text):
        out.extend(tok.strip() for tok in group.split(",") if tok.strip())
    return out


class TitleIndex:
    """Finds catalogue titles named in prose, so that an explanation cannot name a film its cited facts do
    not concern. Titles are matched without their trailing parentheses (year, original title) and with a
    trailing ", The"/", A"/", An" dropped ("Godfather, The (1972)" → "Godfather"); titles shorter than
    ``min_chars`` after that ("Heat", "It") are too common as words to count; matching is case-sensitive
    on word boundaries."""

    def __init__(self, titles: Mapping[str, str], *, min_chars: int = 6) -> None:
        self.items: dict[str, set[str]] = {}
        self.titles: dict[str, str] = dict(titles)  # item → full title
        for item, title in titles.items():
            base = _TITLE_TAIL.sub("", title).strip()
            if len(base) >= min_chars:
                self.items.setdefault(base, set()).add(item)
        names = sorted(self.items, key=len, reverse=True)  # the longest title wins where two overlap
        self._pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, names)) + r")(?!\w)") if names else None

    def mentioned(self, text: str) -> dict[str, set[str]]:
        """Title found in ``text`` → the catalogue items carrying it."""
        if self._pattern is None:
            return {}
        return {m: self.items[m] for m in dict.fromkeys(self._pattern.findall(text))}


_TITLE_TAIL = re.compile(r"(\s*\([^()]*\))+\s*$|,\s*(The|A|An)\s*(?=\(|$)")
_WORD = r"[A-Z][\w'’&-]*\.?"
_NAME_RUN = re.compile(rf"(?<![\w'’]){_WORD}(?:[ \t]+{_WORD})+")
_SENTENCE_START = re.compile(r"(^|[.!?:;]\s+|\n\s*)$")
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])[.!?][\"'”’)\]]*(?=\s|$)")  # "E.T." and "J." are not ends


def whole_sentences(text: str) -> str:
    """``text`` stripped and cut after its last complete sentence, so that a generation stopped by the
    token limit is not shown mid-sentence: ``"Good [1]. It also st"`` → ``"Good [1]."``; a text with no
    sentence end at all is kept whole (the check decides)."""
    text = text.strip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]] if ends else text


# Capitalised only because they open a sentence: dropped from the front of a sentence's first name run.
_OPENERS = frozenset("""a after all also an and another any as at because before both but by check consider
    do don't each enjoy every fans finally for from given here how i if in it it's its just like made many
    maybe more my next no not now of on one or our perhaps plus recommended see since so some starring still
    take that the their then there these they this those though to try viewers watch we what when while why
    with yes you you'll your""".split())


def proper_names(text: str) -> list[str]:
    """Runs of two or more capitalised words in ``text``, in order. A sentence's first word is dropped
    when it is a common opener ("Because Steven Spielberg directed it" → "Steven Spielberg", but
    "Ridley Scott made it" keeps both), a leading article always ("The Empire Strikes Back" → "Empire
    Strikes Back", as catalogue titles are written); a run left with one word is no name.
    ``"E.T. (1982) stars James Earl Jones."`` → ``["James Earl Jones"]``."""
    out = []
    for m in _NAME_RUN.finditer(text):
        words = m.group(0).split()
        if _SENTENCE_START.search(text[: m.start()]) and words[0].lower() in _OPENERS:
            words = words[1:]
        if words and words[0] in ("The", "A", "An"):
            words = words[1:]
        if len(words) >= 2:
            name = " ".join(words)
            out.append(name[:-1] if re.search(r"\w\w\.$", name) else name)  # a full stop, not an initial
    return out


def written_in(name: str, written: str) -> bool:
    """Whether ``written`` contains ``name`` on word boundaries."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", written) is not None


def unstated_name(text: str, written: str) -> str | None:
    """The first of ``text``'s :func:`proper_names` that ``written`` does not contain, else None."""
    return next((name for name in proper_names(text) if not written_in(name, written)), None)


def check(text: str, evidence: Sequence[Evidence], store: GraphStore, history: Collection[str],
          item: str, titles: TitleIndex | None = None) -> tuple[tuple[int, ...], str | None]:
    """``(cited numbers, None)`` when ``text`` is grounded, else ``((), reason)``. With ``titles``, the
    text may name only films that the cited facts concern (the item, the history items they link), only
    proper names written in the cited facts or the item's title (:func:`proper_names`), and must use a
    content word of each fact it cites (:func:`content_words`)."""
    tokens = citations(text)
    if not tokens:
        return (), "cites no evidence"
    numbers = []
    for tok in tokens:
        if not tok.isdigit() or not 1 <= int(tok) <= len(evidence):
            return (), f"cites [{tok}], which is not one of the item's evidence [1]..[{len(evidence)}]"
        numbers.append(int(tok))
    numbers = sorted(set(numbers))
    cited = [evidence[n - 1] for n in numbers]
    ids = [fid for e in cited for fid in e.fact_ids]
    found = store.facts(ids)
    missing = sorted(set(ids) - set(found))
    if missing:
        return (), f"cites facts not in the graph store: {', '.join(missing)}"
    target = NodeRef("Item", item)
    for n, e in zip(numbers, cited):
        ends = {node for fid in e.fact_ids for node in (found[fid].head, found[fid].tail)}
        if target not in ends:
            return (), f"[{n}] does not concern the recommended item"
        if e.kind == "path" and not any(node.label == "Item" and node.id in history for node in ends - {target}):
            return (), f"[{n}] does not link the item to the user's history"
    if titles is not None:
        concerned = {node.id for f in found.values() for node in (f.head, f.tail) if node.label == "Item"} | {item}
        reason = prose_reason(text, titles, concerned, list(zip(numbers, cited)))
        if reason is not None:
            return (), reason
    return tuple(numbers), None


def prose_reason(text: str, titles: TitleIndex, allowed: Collection[str], cited: Sequence[tuple[int, Evidence]],
                 *, said: str | None = None) -> str | None:
    """Why the prose of ``text``, citing ``cited`` (number, evidence), is not grounded, else None. It may
    name films of ``allowed`` (item ids) or written in the cited evidence ("Die xue shuang xiong (Killer,
    The)" there is not the film "Killer (1994)"), proper names written in the cited evidence or the
    allowed films' titles, and must use a content word of each cited evidence. ``said``: in a
    conversation, the person's words, which may name films and names too (reasons then say so)."""
    allowed = set(allowed) | {i for items in titles.mentioned(said or "").values() for i in items}
    written = "\n".join([e.text for _, e in cited] + [titles.titles.get(i, "") for i in sorted(allowed)] + [said or ""])
    nor = "" if said is None else " and the person did not say"
    for title, items in titles.mentioned(text).items():
        if not items & allowed and not written_in(title, written):
            return f"names {title!r}, which no cited fact concerns{nor}"
    name = unstated_name(text, written)
    if name is not None:
        return f"names {name!r}, which no cited fact states{nor}"
    used = set(_words(text))
    for n, e in cited:
        if not used & content_words(e.text, titles.titles.get(e.candidate, "")):
            return f"cites [{n}] but uses none of its words"
    return None


# The evidence renderings' own glue (kerec.kg.evidence), which says nothing about a particular fact.
_GLUE = frozenset("a an and another are as both film for from in is item its linked of on share shares the to with".split())


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def content_words(fact_text: str, item_title: str = "") -> set[str]:
    """The words of an evidence rendering that say what it states: its words less the renderings' glue and
    less the recommended item's own title (all of them, where nothing else is left). A text citing the
    fact must use one ("Scream (1996) — genre: Horror" → {"genre", "horror"}), so that "[1] is a
    recommended item" does not pass for an explanation."""
    words = set(_words(fact_text)) - _GLUE
    return (words - set(_words(item_title))) or words


# What :func:`check` can reject a text for, by a phrase of its reason (names first: a quoted name could hold
# any other phrase; "cites [n] but uses none" before "cites ["), for the tallies in reports.
REJECTIONS = (("which no cited fact concerns", "names a film no cited fact concerns"),
              ("which no cited fact states", "names a person or thing no cited fact states"),
              ("uses none of its words", "cites a fact it does not use"),
              ("cites no evidence", "cites no evidence"), ("cites [", "cites a number that is not the item's"),
              ("cites facts not in", "cites a fact not in the store"),
              ("does not concern", "cites a fact not about the item"),
              ("does not link", "cites a path not from the history"))


def rejection_kind(rejected: str) -> str:
    """The kind (:data:`REJECTIONS`) of one of :attr:`Explanation.rejected`'s ``"reason: 'text'"`` entries."""
    reason = re.split(r": ['\"]", rejected, maxsplit=1)[0]
    return next((kind for marker, kind in REJECTIONS if marker in reason), "other")


def template(evidence: Sequence[Evidence]) -> Explanation:
    """The fallback: one sentence aggregating the evidence (:func:`kerec.kg.summary.summarise`), cited."""
    if not evidence:
        return Explanation(NO_EVIDENCE, "none", (), ())
    summary = summarise(evidence)
    cited = tuple(sorted(set(summary.cited)))
    return Explanation(summary.text, "template", cited, tuple(dict.fromkeys(f for n in cited for f in evidence[n - 1].fact_ids)))


def grounded(generate: Callable[[int], str], evidence: Sequence[Evidence], store: GraphStore,
             history: Collection[str], item: str, *, attempts: int = 2, titles: TitleIndex | None = None) -> Explanation:
    """Ask ``generate(attempt)`` (attempt 0, then retries) until a text, cut to :func:`whole_sentences`,
    passes :func:`check`; after ``attempts`` failures, the template. Nothing is generated for an item
    without evidence."""
    if not evidence:
        return template(evidence)
    tried: list[tuple[str, tuple[int, ...], str | None]] = []
    for attempt in range(attempts):
        text = whole_sentences(generate(attempt))
        numbers, reason = check(text, evidence, store, history, item, titles)
        tried.append((text, numbers, reason))
        if reason is None:
            break
    return settle(tried, evidence)


def settle(tried: Sequence[tuple[str, tuple[int, ...], str | None]], evidence: Sequence[Evidence]) -> Explanation:
    """The explanation after checked attempts ``(text, cited numbers, reason it failed or None)``, in order:
    the first that passed (its source says whether it was a retry), else the template, with the texts that
    failed and why. Each text was checked once, by the caller."""
    rejected = []
    for attempt, (text, numbers, reason) in enumerate(tried):
        if reason is None:
            return Explanation(text, SOURCES[min(attempt, 1)], numbers,
                               tuple(f for n in numbers for f in evidence[n - 1].fact_ids), tuple(rejected))
        rejected.append(f"{reason}: {text[:200]!r}")
    fallback = template(evidence)
    return Explanation(fallback.text, fallback.source, fallback.cited, fallback.fact_ids, tuple(rejected))
