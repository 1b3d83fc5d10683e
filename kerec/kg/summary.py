"""One sentence per candidate from its evidence: what links it to the user's history, said once.

The evidence arrives in information order (:mod:`kerec.kg.evidence`). The statements are grouped by the
history item they name, so that a candidate sharing a director and two actors with one film says so in one
clause; the clause of the history item the most informative knowledge links (the sum of
:attr:`Evidence.information` over its statements) leads, with the user's rating where it supports the pick
(:data:`~kerec.kg.information.SUPPORTING_RATING` or above), and up to :data:`MORE_CLAUSES` follow:

    "Shares the director and 2 actors with Fargo (1996), which you rated 5 [1][2][3]; also an actor with
    3 films you rated 4 or 5: Blood Simple (1984), Barton Fink (1991) and Raising Arizona (1987) [4]."

A statement naming several history items (one actor in three of the user's films) is a clause of its own;
a direct link leads its film's clause ("Is the sequel of Alien (1979), which you rated 5, with the director
in common"); a link that is all the catalogue shares (information 0) is not said where anything else is.
Only when nothing but catalogue metadata links the candidate (genre, language, country, year, content
rating) does the sentence say that, and the candidate's own attributes may complete it: "Shares the genre
Drama with Fargo (1996) and 2 more of your films [1]; its release year is 1996 [2]." Every clause cites the
evidence it rests on and names only films that evidence names, so the sentence passes
:func:`kerec.explain.check` like any explanation.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kerec.errors import KerecError
from kerec.kg.evidence import Evidence, Source, join_words
from kerec.kg.information import SUPPORTING_RATING, role
from kerec.kg.model import NodeRef

MORE_CLAUSES = 2  # clauses after the leading one
LISTED = 3  # films a clause of several unnamed nodes names; the rest are counted


@dataclass(frozen=True)
class Summary:
    text: str
    cited: tuple[int, ...]  # 1-based positions in the evidence given, in the order cited


@dataclass
class _Clause:
    """Statements said together: those naming one history item (``source``), or one statement alone."""

    source: Source | None
    items: list[tuple[int, Evidence]] = field(default_factory=list)

    @property
    def weight(self) -> float:
        return sum(e.information for _, e in self.items)


def summarise(evidence: Sequence[Evidence], *, number: Callable[[int], int] = lambda n: n) -> Summary:
    """The sentence for one candidate's ``evidence`` (module docstring). ``number`` maps an evidence's
    1-based position to the number written in its citation (a chat reply numbers across picks)."""
    if not evidence:
        raise KerecError("summarise needs at least one evidence")
    numbered = list(enumerate(evidence, 1))
    # A link every film shares (the language of the whole catalogue) says nothing: not said, where more is.
    telling = [(n, e) for n, e in numbered if e.information > 0] or numbered
    paths = [(n, e) for n, e in telling if e.kind == "path"]
    informative = [(n, e) for n, e in paths if not e.low]
    clauses = _clauses(informative or [(n, e) for n, e in paths if e.low])
    chosen = clauses[: 1 + MORE_CLAUSES] if informative else clauses[:2]
    texts = [_say(c, first=k == 0) for k, c in enumerate(chosen)]
    if not informative and len(chosen) < 2:  # metadata only: the candidate's own attributes may complete it
        said = {(e.role, e.name) for c in chosen for _, e in c.items}
        for n, e in telling:
            if e.kind == "attribute" and (e.role, e.name) not in said and len(chosen) < 2:
                chosen.append(_Clause(None, [(n, e)]))
                texts.append(f"its {e.role} is {e.name}")
                said.add((e.role, e.name))
    parts = []
    for k, (text, clause) in enumerate(zip(texts, chosen)):
        glue = "" if k == 0 else "; also " if k == 1 else ", and "
        parts.append(f"{glue}{text} " + "".join(f"[{number(n)}]" for n in sorted(n for n, _ in clause.items)))
    sentence = "".join(parts)
    return Summary(sentence[:1].upper() + sentence[1:] + ".", tuple(n for c in chosen for n, _ in sorted(c.items)))


def _clauses(statements: list[tuple[int, Evidence]]) -> list[_Clause]:
    """``statements`` grouped by the one history item each names (module docstring), best group first: the
    leading history item's, then by weight. Statements naming several items or mixing roles stand alone,
    except that unnamed nodes of one role are said together ("2 award nominations with …"): a film is
    then named once, not in a clause per node."""
    by_source: dict[str, _Clause] = {}
    alone: dict[object, _Clause] = {}
    lead = _lead(statements)
    for n, e in statements:
        shared = e.role == e.source_role and not (e.via is not None and e.via.label == "Item")
        if shared and lead is not None and lead in e.sources:
            by_source.setdefault(lead.item, _Clause(lead)).items.append((n, e))
        elif shared and e.linked == 1:
            by_source.setdefault(e.sources[0].item, _Clause(e.sources[0])).items.append((n, e))
        else:
            alone.setdefault(_unnamed_role(e) or n, _Clause(None)).items.append((n, e))
    first = [by_source.pop(lead.item)] if lead is not None and lead.item in by_source else []
    for item, clause in list(by_source.items()):  # one film's clause of a role said together elsewhere joins it
        roles = {_unnamed_role(e) for _, e in clause.items}
        if len(roles) == 1 and (key := roles.pop()) is not None and key in alone:
            alone[key].items.extend(by_source.pop(item).items)
    return first + sorted([*by_source.values(), *alone.values()], key=lambda c: (-c.weight, min(n for n, _ in c.items)))


def _unnamed_role(e: Evidence) -> tuple[str, str] | None:
    """(role, source role) of a statement through an unnamed node other than a film, else None."""
    return None if e.name or e.via is None or e.via.label == "Item" else (e.role, e.source_role)


def _lead(statements: list[tuple[int, Evidence]]) -> Source | None:
    weight: dict[str, float] = {}
    first: dict[str, Source] = {}
    for _, e in statements:
        if e.role == e.source_role and not (e.via is not None and e.via.label == "Item"):
            for s in e.sources:
                weight[s.item] = weight.get(s.item, 0.0) + e.information
                first.setdefault(s.item, s)
    return max(first.values(), key=lambda s: (weight[s.item], s.rating or 0.0), default=None)


def _say(clause: _Clause, *, first: bool) -> str:
    """The clause's words, from the candidate's side; ``first``: it opens the sentence."""
    if clause.source is None:
        if len({(e.sources, e.linked) for _, e in clause.items}) > 1:
            return _together([e for _, e in clause.items], first=first)
        return _alone(clause.items[0][1], len(clause.items), first=first)
    source = clause.source
    direct = [e for _, e in clause.items if e.via is None]
    linked = [e for _, e in clause.items if e.via is not None]
    roles = join_words(_role_phrases(linked)) if linked else ""
    if direct:
        said = _direct_rated(direct[0], source)  # "is the sequel of A, which you rated 5" / "its sequel is A"
        if not (first or said.startswith("its ")):
            said = "it " + said
        return said + (f", with {roles} in common" if linked else "")
    return f"{'shares ' if first else ''}{roles} with {source.title}{_rated(source)}"


def _alone(e: Evidence, count: int, *, first: bool) -> str:
    """A statement of its own (or ``count`` alike ones of unnamed nodes linking the same films)."""
    if e.via is None:
        said = _direct_rated(e, e.sources[0])
        return said if first or said.startswith("its ") else f"it {said}"
    what = f"the {e.role} {e.name}" if e.name else role(e.role).count(count)
    if e.via.label == "Item":  # another catalogue film between them: "A —sequel→ B —sequel→ candidate"
        return f"{'' if first else 'it '}is linked to {_titles(e)} through {e.name or 'another film'} ({e.role})"
    if e.role != e.source_role:
        if count > 1:
            return f"{role(e.role).count(count)} who are also {role(e.source_role).plural} of {_titles(e)}"
        return f"its {e.role}{' ' + e.name if e.name else ''} is {role(e.source_role).one()} of {_titles(e)}"
    verb = "shares " if first else ""
    if e.name:  # a named value: its name says what it is
        return f"{verb}{what} with {_titles(e)}"
    return f"{verb}{what} with {e.linked} {_films_rated(e)}: {_titles(e)}"


def _together(statements: Sequence[Evidence], *, first: bool) -> str:
    """Unnamed nodes of one role linking different films, said once: "2 award nominations with 3 of your
    films: A, B and C", each film once, at most :data:`LISTED` named ("… and more of your films" where a
    statement links more than it names)."""
    e = statements[0]
    sources = list({s.item: s for x in statements for s in x.sources}.values())
    what = role(e.role).count(len(statements))
    titles = [s.title for s in sources[:LISTED]]
    if any(x.linked > len(x.sources) for x in statements):
        films = join_words(titles + ["more of your films"])
    elif len(sources) == 1:
        films = sources[0].title + _rated(sources[0])
    else:
        rest = [f"{len(sources) - LISTED} more"] if len(sources) > LISTED else []
        films = f"{len(sources)} {_rated_many(sources)}: {join_words(titles + rest)}"
    if e.role != e.source_role:
        return f"{what} who are also {role(e.source_role).plural} of {films}"
    return f"{'shares ' if first else ''}{what} with {films}"


def _role_phrases(statements: Sequence[Evidence]) -> list[str]:
    """``["the director", "2 actors", "the genre Drama and another genre"]``: unnamed nodes counted by role,
    named ones by name, the unnamed of a role that also has a named one counted after it."""
    unnamed: dict[str, int] = {}
    named: dict[str, list[str]] = {}
    for e in statements:
        named.setdefault(e.role, [])
        if e.name:
            named[e.role].append(f"the {e.role} {e.name}")
        else:
            unnamed[e.role] = unnamed.get(e.role, 0) + 1
    phrases = [role(r).count(unnamed[r]) for r in named if not named[r]]
    for r, names in named.items():
        if names and r in unnamed:
            names.append(f"another {r}" if unnamed[r] == 1 else f"{unnamed[r]} more {role(r).plural}")
        phrases += names
    return phrases


def _direct_rated(e: Evidence, source: Source) -> str:
    """A direct fact from the candidate's side: ``"is the sequel of A, which you rated 5"`` or ``"its
    sequel is A, which you rated 5"`` (never "Has A…": a capitalised verb before a title would read as
    part of a name to :func:`kerec.explain.proper_names`)."""
    if e.facts[0].tail == NodeRef("Item", e.candidate):
        return f"is the {e.role} of {source.title}{_rated(source)}"
    return f"its {e.role} is {source.title}{_rated(source)}"


def _rated(s: Source) -> str:
    return f", which you rated {s.rating:g}" if s.rating is not None and s.rating >= SUPPORTING_RATING else ""


def _titles(e: Evidence) -> str:
    more = e.linked - len(e.sources)
    return join_words([s.title for s in e.sources] + ([f"{more} more of your films"] if more > 0 else []))


def _films_rated(e: Evidence) -> str:
    """``"films you rated 4 or 5"`` when the text names every film and each supports the pick, else
    ``"of your films"``."""
    if e.linked > len(e.sources):
        return "of your films"
    return _rated_many(e.sources)


def _rated_many(sources: Sequence[Source]) -> str:
    """``"films you rated 4 or 5"`` when each of ``sources`` supports the pick, else ``"of your films"``."""
    ratings = [s.rating for s in sources]
    if any(r is None or r < SUPPORTING_RATING for r in ratings):
        return "of your films"
    distinct = sorted({float(r) for r in ratings if r is not None})
    said = " or ".join(f"{r:g}" for r in distinct) if len(distinct) <= 2 else f"{distinct[0]:g} to {distinct[-1]:g}"
    return f"films you rated {said}"
