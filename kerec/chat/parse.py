"""Rule-based reading of one chat message: deterministic, no model involved.

Steps, in order (word lists in :mod:`kerec.chat.vocab`):

1. **Titles, exact.** The message's words (:func:`~kerec.chat.catalogue.normalise`'d) are scanned left to
   right for the longest catalogue title key (leading article optional). A key of several words matches
   in any case ("toy story"). A one-word key ("Fargo", "Heat") needs more evidence, since many are plain
   words: it is quoted, or follows a trigger word ("like", "loved", "seen", "than"…), or is capitalised
   and not the first word of a sentence, or is capitalised, first, and followed by "was"/"is"/"and"…, or
   is the whole message. Pure numbers ("1941") match only quoted. A year right after a title ("Hamlet
   1996") picks that year's item among same-named ones.
2. **Titles, fuzzy** (typos). After a trigger word, the following words up to a clause break are compared
   with every title key of a similar length (:class:`difflib.SequenceMatcher` ratio ≥ 0.8, phrases of at
   least 4 letters; the longest best prefix wins), then the next title after "and"/"or"/","… A phrase
   that starts capitalised and matches nothing is reported back as not found.
3. **What a mention means**: the nearest cue before it in its clause (clauses break at ``, . ; : ! ?`` and
   "but"/"however"/"though"): a dislike cue ("hated", "didn't like", "nothing like") → *disliked*
   (excluded, and steers away from similar items); an exclusion cue ("not", "except", "seen") →
   *excluded*; otherwise *liked* (drives retrieval). "…, which I loved" / "… was awful" after the title
   overrides a "seen" cue.
4. **Years** (title words masked first): "1995", "the 90s", "early 80s", "nineties" are time expressions;
   "nothing before 1990" / "1990 or later" / "since 1990" → min year; "before 1990" → max 1989; "after
   2000" → min 2001; "until 1980" → max 1980; "between 1980 and 1990" / "1980-1990" → both; "not from
   the 80s" → that span excluded; a bare expression ("from the 90s", "in 1995") → that span.
5. **Genres**, per clause: a genre name or synonym ("comedies", "sci-fi", "noir", "cartoons") is a hard
   constraint — *in* (the item must have it) or *out* (must not) by the nearest cue before it ("no
   horror", "anything but drama", "instead of a thriller"). Genres joined by "or" ("comedy or romance")
   become soft preferences instead. Adjectives ("funny", "lighter", "scary", "dark") are soft genre
   preferences (negated: "nothing too dark" → the opposite); "older"/"classic" and "newer"/"recent" are
   soft year preferences.
6. "something else", "none of those", "more" → the last recommendations are excluded; a message that
   is only "reset" / "start over" clears the session.
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field

import kerec.chat.vocab as vocab
from kerec.chat.catalogue import ARTICLES, Catalogue, genre_forms, normalise

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]")
_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{1,200})[\"“”«»]")
_BREAK_PUNCT = frozenset(",.;:!?\n")
_BREAK_WORDS = frozenset({"but", "however", "though", "although", "yet", "whereas"})
_SENTENCE_END = frozenset(".!?\n")
MIN_FUZZY = 0.8
_SOFT_WORDS = frozenset(w for pattern, _ in vocab.SOFT_GENRES for phrase in pattern.split("|")
                        for w in phrase.split()[:1]) | {"older", "old", "classic", "newer", "recent", "modern"}
_WORD_YEARS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
               "seventies": 1970, "eighties": 1980, "nineties": 1990}


@dataclass(frozen=True)
class Mention:
    item: int  # catalogue index
    polarity: str  # "like", "dislike", "exclude"
    written: str  # the words as the person wrote them
    fuzzy: bool = False


@dataclass(frozen=True)
class Parsed:
    """What one message says. ``year_min``/``year_max``: None = not stated in this message."""

    mentions: tuple[Mention, ...] = ()
    genres_in: tuple[str, ...] = ()
    genres_out: tuple[str, ...] = ()
    soft_genres: dict[str, float] = field(default_factory=dict)
    soft_year: int = 0  # -1 older, +1 newer
    year_min: int | None = None
    year_max: int | None = None
    years_out: tuple[tuple[int, int], ...] = ()
    not_found: tuple[str, ...] = ()
    more: bool = False
    reset: bool = False

    @property
    def recognised(self) -> bool:
        """Whether anything in the message maps to the catalogue (items, genres, years, preferences)."""
        return bool(self.mentions or self.genres_in or self.genres_out or self.soft_genres or self.soft_year
                    or self.year_min is not None or self.year_max is not None or self.years_out)


@dataclass
class _Word:
    orig: str
    norm: str
    start: int
    breaks_before: bool  # a clause break (punctuation or "but"…) lies between the previous word and this one
    sentence_start: bool
    quoted: bool
    covered: bool = False


def _words(text: str) -> list[_Word]:
    quoted = [m.span(1) for m in _QUOTED.finditer(text)]
    words: list[_Word] = []
    pending_break, pending_sentence = True, True
    for m in _TOKEN.finditer(text):
        tok = m.group()
        gap = text[words[-1].start + len(words[-1].orig) if words else 0: m.start()]
        if "\n" in gap:
            pending_break = pending_sentence = True
        if tok == "&":
            tok = "and"
        elif len(tok) == 1 and not tok.isalnum():
            if tok in _BREAK_PUNCT:
                pending_break = True
                pending_sentence |= tok in _SENTENCE_END
            continue
        for part in normalise(tok).split():
            is_quoted = any(a <= m.start() < b for a, b in quoted)
            words.append(_Word(tok, part, m.start(), pending_break or part in _BREAK_WORDS, pending_sentence,
                               is_quoted))
            pending_break = pending_sentence = False
    return words


def parse_message(text: str, catalogue: Catalogue) -> Parsed:
    """Read ``text`` against ``catalogue`` (see the module docstring)."""
    words = _words(text)
    residual_all = " ".join(w.norm for w in words)
    if vocab.RESET.match(residual_all):
        return Parsed(reset=True)
    mentions = _exact_titles(words, catalogue)
    fuzzy, not_found = _fuzzy_titles(words, catalogue)
    mentions = sorted(mentions + fuzzy, key=lambda m: m[0])
    found = tuple(Mention(item, _polarity(words, s, e), " ".join(w.orig for w in words[s:e]), fz)
                  for s, e, item, fz in mentions)
    residual = _residual(words)
    residual, years = _years(residual)
    genres_in, genres_out, soft, soft_year = _genres(residual, catalogue)
    return Parsed(found, genres_in, genres_out, soft, soft_year, years.get("min"), years.get("max"),
                  tuple(years.get("out", ())), tuple(not_found), bool(vocab.MORE.search(residual_all)))


# ---------------------------------------------------------------------------------------------- titles
def _key(words: list[_Word]) -> str:
    norms = [w.norm for w in words]
    if len(norms) > 1 and norms[0] in ARTICLES:
        norms = norms[1:]
    return " ".join(norms)


def _after_trigger(words: list[_Word], s: int) -> bool:
    i = s - 1
    while i >= 0 and words[i].norm in ARTICLES and not words[i + 1].breaks_before:
        i -= 1
    if i < 0 or words[i + 1].breaks_before:
        return False
    if words[i].norm in vocab.FUZZY_TRIGGERS:
        return True
    return i >= 1 and (words[i - 1].norm, words[i].norm) in vocab.TRIGGER_PAIRS


def _accept(words: list[_Word], s: int, e: int, key: str, catalogue: Catalogue) -> bool:
    quoted = all(w.quoted for w in words[s:e])
    if key.replace(" ", "").isdigit():
        return quoted
    if " " in key:
        return True
    if quoted or (s == 0 and e == len(words)) or _after_trigger(words, s):
        return True
    w = words[e - 1]
    if not w.orig[:1].isupper() or key in catalogue.genre_words:
        return False
    if not words[s].sentence_start:
        return True
    return e == len(words) or words[e].breaks_before or words[e].norm in vocab.FOLLOWERS or (
        len(words[e].norm) == 4 and words[e].norm.isdigit())


def _exact_titles(words: list[_Word], catalogue: Catalogue) -> list[tuple[int, int, int, bool]]:
    out = []
    i = 0
    while i < len(words):
        for j in range(min(len(words), i + catalogue.max_key_words + 1), i, -1):
            key = _key(words[i:j])
            if key in catalogue.keys and _accept(words, i, j, key, catalogue):
                item, j = _with_year(words, j, catalogue.keys[key], catalogue)
                for w in words[i:j]:
                    w.covered = True
                out.append((i, j, item, False))
                i = j
                break
        else:
            i += 1
    return out


def _with_year(words: list[_Word], j: int, items: tuple[int, ...], catalogue: Catalogue) -> tuple[int, int]:
    if j < len(words) and words[j].norm.isdigit() and len(words[j].norm) == 4:
        for item in items:
            if catalogue.item_year(item) == int(words[j].norm):
                return item, j + 1
    return items[0], j


def _fuzzy_titles(words: list[_Word], catalogue: Catalogue) -> tuple[list[tuple[int, int, int, bool]], list[str]]:
    out: list[tuple[int, int, int, bool]] = []
    not_found: list[str] = []
    for t, w in enumerate(words):
        if not (w.norm in vocab.FUZZY_TRIGGERS or (t >= 1 and (words[t - 1].norm, w.norm) in vocab.TRIGGER_PAIRS)):
            continue
        s, after_title = t + 1, False
        while s < len(words):
            word = words[s]
            # A clause break ends the list, except a comma between titles ("like Fargo, Toy Stroy").
            if word.breaks_before and (not after_title or word.sentence_start or word.norm in _BREAK_WORDS):
                break
            if word.covered:
                while s < len(words) and words[s].covered:
                    s += 1
                after_title = True
                continue
            if word.norm in vocab.CONNECTORS:
                s += 1
                continue
            if word.norm in vocab.NOT_TITLE or word.norm in catalogue.genre_words or word.norm in _SOFT_WORDS:
                break
            end = s
            while end < len(words) and end - s < 8 and not words[end].covered and \
                    (end == s or not words[end].breaks_before):
                end += 1
            best = _best_prefix(words, s, end, catalogue.keys_by_words)
            if best is None:
                if word.orig[:1].isupper():
                    not_found.append(" ".join(x.orig for x in words[s:min(end, s + 4)]))
                break
            stop, key, _ = best
            item, stop = _with_year(words, stop, catalogue.keys[key], catalogue)
            for x in words[s:stop]:
                x.covered = True
            out.append((s, stop, item, True))
            s, after_title = stop, True
    return out, not_found


def _best_prefix(words: list[_Word], s: int, end: int,
                 by_len: dict[int, tuple[str, ...]]) -> tuple[int, str, float] | None:
    best: tuple[int, str, float] | None = None
    for stop in range(end, s, -1):
        phrase = " ".join(w.norm for w in words[s:stop])
        if len(phrase.replace(" ", "")) < 4:
            continue
        n = stop - s
        pool = [k for m in (n - 1, n, n + 1) for k in by_len.get(m, ())]
        for key in difflib.get_close_matches(phrase, pool, n=1, cutoff=MIN_FUZZY):
            ratio = difflib.SequenceMatcher(None, phrase, key).ratio()
            if best is None or ratio > best[2] + 1e-9:
                best = (stop, key, ratio)
    return best


def _clause_before(words: list[_Word], s: int) -> str:
    start = s
    while start > 0 and not words[start].breaks_before:
        start -= 1
    return " ".join(w.norm if not w.covered else "_" for w in words[start:s] if w.norm not in _BREAK_WORDS)


def _clause_after(words: list[_Word], e: int) -> str:
    out = []
    while e < len(words) and not words[e].breaks_before and not words[e].covered:
        out.append(words[e].norm)
        e += 1
    # "Fargo, which I loved": one comma-separated afterthought still belongs to the mention
    if e < len(words) and words[e].norm in ("which", "that", "it") and not words[e].covered:
        while e < len(words) and not words[e].covered and (not out or not words[e].breaks_before
                                                           or words[e].norm in ("which", "that", "it")):
            out.append(words[e].norm)
            e += 1
    return " ".join(out)


def _polarity(words: list[_Word], s: int, e: int) -> str:
    before = _clause_before(words, s)
    cue = _last_cue(before, {"dislike": vocab.DISLIKE_CUES, "exclude": vocab.EXCLUDE_CUES,
                             "like": vocab.LIKE_CUES})
    seen = re.search(r"\b(?:seen|watched|saw)(?: (?:the|a|an))?$", before)
    if cue == "dislike" or (cue == "exclude" and not seen):
        return cue
    after = _clause_after(words, e)
    if vocab.AFTER_DISLIKE.search(after):
        return "dislike"
    if vocab.AFTER_LIKE.search(after):
        return "like"
    return cue or "like"


@functools.lru_cache(maxsize=8)
def _cue_pattern(cues: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[re.Pattern[str], list[tuple[str, str]]]:
    alternatives = sorted(((c, kind) for kind, cs in cues for c in cs), key=lambda x: -len(x[0]))
    return re.compile(r"\b(?:" + "|".join(f"({re.escape(c)})" for c, _ in alternatives) + r")\b"), alternatives


def _last_cue(text: str, cues: dict[str, tuple[str, ...]]) -> str | None:
    """The kind of the cue ending last in ``text`` (longest alternatives tried first)."""
    pattern, alternatives = _cue_pattern(tuple(cues.items()))
    last: tuple[int, str] | None = None
    for m in pattern.finditer(text):
        kind = alternatives[m.lastindex - 1][1]  # type: ignore[operator]
        if last is None or m.end() >= last[0]:
            last = (m.end(), kind)
    return last[1] if last else None


def _residual(words: list[_Word]) -> str:
    """The message without title words, clause breaks as ``|``."""
    parts = []
    for w in words:
        if w.breaks_before and parts:
            parts.append("|")
        if w.norm in _BREAK_WORDS:
            continue
        parts.append("_" if w.covered else w.norm)
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------- years
_DECADE = re.compile(r"\b(?:(early|mid|late) )?(?:the )?(?:(19|20)?([0-9])0s|(" + "|".join(_WORD_YEARS) + r"))\b")
_YEAR = re.compile(r"\b(18[89][0-9]|19[0-9]{2}|20[0-2][0-9])\b")
_T = r"(?:the )?T(\d+)"
_NEG = r"(?:nothing|not|none|no(?: \w+)?)(?: (?:made|released|from))?"
_YEAR_RULES: tuple[tuple[str, str], ...] = (
    (rf"\b(?:between|from) {_T} (?:and|to|until|till|through) {_T}\b", "range2"),
    (rf"\bT(\d+) (?:to|until|till|through) T(\d+)\b", "range2"),
    (rf"\b{_NEG} (?:before|earlier than|older than|prior to) {_T}\b", "min_lo"),
    (rf"\b{_NEG} (?:after|later than|newer than|more recent than) {_T}\b", "max_hi"),
    (rf"\b(?:before|earlier than|older than|prior to|pre) {_T}\b", "max_before"),
    (rf"\b(?:after|later than|newer than|more recent than|post) {_T}\b", "min_after"),
    (rf"\b(?:since|from|starting(?: in| from)?) {_T} (?:on|onwards|onward)\b", "min_lo"),
    (rf"\b{_T} (?:or|and) (?:later|newer|after|up|onwards|more recent)\b", "min_lo"),
    (rf"\b{_T} (?:onwards|onward)\b", "min_lo"),
    (rf"\b(?:since|at least) {_T}\b", "min_lo"),
    (rf"\b(?:until|up to|through|till|by|no later than) {_T}\b", "max_hi"),
    (rf"\b{_T} (?:or|and) (?:earlier|older|before)\b", "max_hi"),
    (rf"\b(?:nothing|not|none|no)(?: \w+)?(?: from| in)? {_T}\b", "out"),
    (rf"\b{_T}\b", "span"),
)


def _years(residual: str) -> tuple[str, dict[str, object]]:
    spans: list[tuple[int, int]] = []

    def decade(m: re.Match[str]) -> str:
        lo = _WORD_YEARS[m.group(4)] if m.group(4) else (
            int(m.group(2) or ("19" if int(m.group(3)) >= 2 else "20")) * 100 + int(m.group(3)) * 10)
        part = {"early": (0, 3), "mid": (3, 6), "late": (6, 9), None: (0, 9)}[m.group(1)]
        spans.append((lo + part[0], lo + part[1]))
        return f" T{len(spans) - 1} "

    def year(m: re.Match[str]) -> str:
        spans.append((int(m.group(1)), int(m.group(1))))
        return f" T{len(spans) - 1} "

    text = " ".join(_YEAR.sub(year, _DECADE.sub(decade, residual)).split())
    # "the 90s - 2000s" / "1980-1990": the hyphen was dropped by normalisation, leaving "t0 t1"
    text = re.sub(r"\bT(\d+) T(\d+)\b", r"T\1 to T\2", text)
    out: dict[str, object] = {}
    bare: list[tuple[int, int]] = []
    for rule, kind in _YEAR_RULES:
        def apply(m: re.Match[str], kind: str = kind) -> str:
            ts = [spans[int(g)] for g in m.groups() if g is not None]
            if kind == "range2":
                out["min"], out["max"] = ts[0][0], ts[-1][1]
            elif kind == "min_lo":
                out["min"] = ts[0][0]
            elif kind == "max_hi":
                out["max"] = ts[0][1]
            elif kind == "max_before":
                out["max"] = ts[0][0] - 1
            elif kind == "min_after":
                out["min"] = ts[0][1] + 1
            elif kind == "out":
                out.setdefault("out", []).append(ts[0])  # type: ignore[union-attr]
            else:
                bare.append(ts[0])
            return " "
        text = re.sub(rule, apply, text)
    if bare:
        out["min"], out["max"] = min(lo for lo, _ in bare), max(hi for _, hi in bare)
    return text, out


# ---------------------------------------------------------------------------------------------- genres
def _genres(residual: str, catalogue: Catalogue) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, float], int]:
    lower = {g.lower(): g for g in catalogue.genre_names}
    forms = sorted(((f, g) for g in catalogue.genre_names for f in genre_forms(g)), key=lambda x: -len(x[0]))
    genre_re = re.compile(r"\b(?:" + "|".join(f"({re.escape(f)})" for f, _ in forms) + r")\b") if forms else None
    cues = {"out": vocab.GENRE_OUT_CUES, "in": vocab.GENRE_IN_CUES}
    g_in: list[str] = []
    g_out: list[str] = []
    soft: dict[str, float] = {}
    soft_year = 0
    for clause in residual.split("|"):
        found = []
        for m in (genre_re.finditer(clause) if genre_re else ()):
            genre = forms[m.lastindex - 1][1]  # type: ignore[operator]
            found.append((m.start(), m.end(), genre, _last_cue(clause[:m.start()], cues) or "in"))
        for n, (start, _, genre, side) in enumerate(found):
            joined_by_or = any(re.fullmatch(r"\s*or(?: an?)?\s*", clause[a[1]:b[0]]) and a[3] == b[3] == "in"
                               for a, b in zip(found, found[1:]) if start in (a[0], b[0]))
            if joined_by_or:
                soft[genre] = soft.get(genre, 0.0) + 1.0
            else:
                (g_out if side == "out" else g_in).append(genre)
        blanked = genre_re.sub(" ", clause) if genre_re else clause
        for pattern, weights in vocab.SOFT_GENRES:
            for m in re.finditer(rf"\b(?:{pattern})\b", blanked):
                sign = -1.0 if _last_cue(blanked[:m.start()], cues) == "out" else 1.0
                for g, w in weights.items():
                    if g in lower:
                        soft[lower[g]] = soft.get(lower[g], 0.0) + sign * w
        for pattern, direction in ((vocab.SOFT_OLDER, -1), (vocab.SOFT_NEWER, 1)):
            for m in re.finditer(rf"\b(?:{pattern})\b", blanked):
                soft_year = -direction if _last_cue(blanked[:m.start()], cues) == "out" else direction
    g_in = [g for g in dict.fromkeys(g_in) if g not in g_out]
    return tuple(g_in), tuple(dict.fromkeys(g_out)), {g: w for g, w in soft.items() if w}, soft_year
