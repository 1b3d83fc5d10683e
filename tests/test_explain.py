"""kerec.explain: the grounding check and the fallback path, on the tiny dataset's real graph store.
The "generations" here are fixed texts standing for LLM output: the check is what is under test."""
from __future__ import annotations

from dataclasses import replace

import pytest

from kerec.explain import (NO_EVIDENCE, TitleIndex, check, citations, content_words, grounded, proper_names,
                           rejection_kind, template, whole_sentences)
from kerec.kg import MemoryStore
from kerec.kg.evidence import Evidence, EvidenceBuilder
from kerec.kg.model import Fact, NodeRef


@pytest.fixture(scope="module")
def store(tiny_store: MemoryStore) -> MemoryStore:
    return tiny_store


@pytest.fixture(scope="module")
def evidence(store: MemoryStore) -> list[Evidence]:
    b = EvidenceBuilder(store)
    return b.rank(b.collect(["i1"], ["i3"]), top=3)["i3"]


def test_citations_parsing() -> None:
    assert citations("a [1] b [2][x] c [1, 3]") == ["1", "2", "x", "1", "3"]
    assert citations("no brackets") == []


def test_grounded_text_passes(store: MemoryStore, evidence: list[Evidence]) -> None:
    numbers, reason = check("You liked Alpha; Gamma shares its release year [1] and more [2].", evidence, store, {"i1"}, "i3")
    assert reason is None and numbers == (1, 2)


@pytest.mark.parametrize("text, why", [
    ("A fine film.", "cites no evidence"),
    ("Because [7].", "not one of the item's evidence"),
    ("Because [f0123456789abcdef].", "not one of the item's evidence"),
])
def test_ungrounded_texts_fail(store: MemoryStore, evidence: list[Evidence], text: str, why: str) -> None:
    numbers, reason = check(text, evidence, store, {"i1"}, "i3")
    assert numbers == () and why in reason


def test_fact_missing_from_store_fails(store: MemoryStore, evidence: list[Evidence]) -> None:
    fake = Fact.of(NodeRef("Item", "i1"), "film.film.invented", NodeRef("Item", "i3"))
    forged = [Evidence("i3", "path", "Alpha invented Gamma", (fake,), "i1")]
    _, reason = check("So [1].", forged, store, {"i1"}, "i3")
    assert "not in the graph store" in reason and fake.id in reason


def test_fact_unrelated_to_history_or_item_fails(store: MemoryStore, evidence: list[Evidence]) -> None:
    # Real evidence, but the user's history does not hold its source item.
    path = next(e for e in evidence if e.kind == "path")
    _, reason = check("So [1].", [path], store, {"i5"}, "i3")
    assert "does not link the item to the user's history" in reason
    _, reason = check("So [1].", [path], store, {"i1"}, "i4")
    assert "does not concern the recommended item" in reason


def test_retry_then_template_and_the_path_is_recorded(store: MemoryStore, evidence: list[Evidence]) -> None:
    calls = []

    def gen(outputs: list[str]):
        def generate(attempt: int) -> str:
            calls.append(attempt)
            return outputs[attempt]
        return generate

    first = grounded(gen(["Good [2]."]), evidence, store, {"i1"}, "i3")
    assert first.source == "llm" and first.cited == (2,) and first.fact_ids == evidence[1].fact_ids
    retry = grounded(gen(["Bad [9].", "Good [1]."]), evidence, store, {"i1"}, "i3")
    assert retry.source == "llm-retry" and retry.cited == (1,) and len(retry.rejected) == 1
    fallback = grounded(gen(["Bad.", "Worse [0]."]), evidence, store, {"i1"}, "i3")
    assert fallback.source == "template" and len(fallback.rejected) == 2
    # One sentence from the two most informative statements (sequel and director, kerec.kg.summary).
    assert fallback.text == "Is the sequel of Alpha (1990), with the director in common [1][2]."
    # The fallback itself passes the check, the prose rules included.
    titles = TitleIndex({"i1": "Alpha (1990)", "i3": "Gamma (1990)"})
    assert check(fallback.text, evidence, store, {"i1"}, "i3", titles)[1] is None
    calls.clear()
    empty = grounded(gen(["never asked"]), [], store, {"i1"}, "i3")
    assert empty.source == "none" and empty.text == NO_EVIDENCE and calls == []


def test_naming_a_film_no_cited_fact_concerns_fails(store: MemoryStore, evidence: list[Evidence]) -> None:
    titles = TitleIndex({"i1": "Alpha (1990)", "i3": "Gamma (1990)", "i5": "Epsilon (1995)", "i6": "Zeta (1999)"},
                        min_chars=5)
    assert set(titles.items) == {"Alpha", "Gamma", "Epsilon"}  # "Zeta" is shorter than min_chars
    path = next(n for n, e in enumerate(evidence, 1) if e.kind == "path")  # links history i1 to i3
    ok = f"You liked Alpha, and Gamma follows from it [{path}]."
    assert check(ok, evidence, store, {"i1", "i5"}, "i3", titles)[1] is None
    # Epsilon is in the history but no cited fact concerns it; Zeta is too short a title to count.
    _, reason = check(f"Like Epsilon and Zeta, Gamma is great [{path}].", evidence, store, {"i1", "i5"}, "i3", titles)
    assert reason == "names 'Epsilon', which no cited fact concerns"
    # Without the index the same text passes: the title check is what rejects it.
    assert check(f"Like Epsilon, Gamma is great [{path}].", evidence, store, {"i1", "i5"}, "i3")[1] is None


def test_title_index_strips_years_articles_and_original_titles() -> None:
    titles = TitleIndex({"1": "Godfather, The (1972)", "2": "Godfather: Part II, The (1974)",
                         "3": "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", "4": "Heat (1995)"})
    assert titles.mentioned("The Godfather: Part II beats Shanghai Triad in the Heat") == {
        "Godfather: Part II": {"2"}, "Shanghai Triad": {"3"}}
    assert titles.mentioned("the godfather") == {}  # case-sensitive: a title is capitalised in prose


def test_proper_names_finds_name_runs_not_sentence_openers_or_articles() -> None:
    text = ("Because Steven Spielberg directed E.T. the Extra-Terrestrial (1982) [1], it suits you. The Empire "
            "Strikes Back stars James Earl Jones and was directed by John Carillo.")
    assert proper_names(text) == ["Steven Spielberg", "Empire Strikes Back", "James Earl Jones", "John Carillo"]
    assert proper_names("Recommended because you liked Heat [1].") == []  # one capitalised word is no name


def test_naming_a_person_no_cited_fact_states_fails(store: MemoryStore, evidence: list[Evidence]) -> None:
    # The defect this guards against: real citations, plus a cast and director the facts never state.
    titles = TitleIndex({"i1": "Alpha (1990)", "i3": "Gamma (1990)"}, min_chars=5)
    n, path = next((n, e) for n, e in enumerate(evidence, 1) if e.kind == "path")
    stated = [replace(path, text="Alpha (1990) and Gamma (1990) share the director Ridley Scott")] + \
        [e for e in evidence if e is not path]
    ok = "Gamma shares the director Ridley Scott with Alpha [1]."
    assert check(ok, stated, store, {"i1"}, "i3", titles) == ((1,), None)
    bad = "Gamma shares the director Ridley Scott with Alpha [1], starring James Earl Jones."
    assert check(bad, stated, store, {"i1"}, "i3", titles) == ((), "names 'James Earl Jones', which no cited fact states")
    # A name stated only by evidence the text does not cite does not count.
    other = next(m for m, e in enumerate(stated, 1) if m != 1)
    _, reason = check(f"Ridley Scott made Gamma [{other}].", stated, store, {"i1"}, "i3", titles)
    assert reason == "names 'Ridley Scott', which no cited fact states"


def test_generations_are_cut_to_whole_sentences(store: MemoryStore, evidence: list[Evidence]) -> None:
    assert whole_sentences("  Good [1]. It also st") == "Good [1]."
    assert whole_sentences("E.T. and Alpha share a director [1]") == "E.T. and Alpha share a director [1]"
    assert whole_sentences("Good [1]. Directed by J. Smith") == "Good [1]."
    shown = grounded(lambda attempt: "Gamma follows Alpha [1]. It was also made by", evidence, store, {"i1"}, "i3")
    assert shown.source == "llm" and shown.text == "Gamma follows Alpha [1]."


def test_rejections_are_tallied_by_kind(store: MemoryStore, evidence: list[Evidence]) -> None:
    titles = TitleIndex({"i1": "Alpha (1990)", "i3": "Gamma (1990)", "i5": "Epsilon (1995)"}, min_chars=5)
    path = next(n for n, e in enumerate(evidence, 1) if e.kind == "path")
    bad = {"A fine film.": "cites no evidence", "Because [9].": "cites a number that is not the item's",
           f"Like Epsilon [{path}].": "names a film no cited fact concerns",
           f"Gamma stars James Earl Jones [{path}].": "names a person or thing no cited fact states"}
    texts = list(bad)
    shown = grounded(lambda attempt: texts[attempt], evidence, store, {"i1", "i5"}, "i3", attempts=len(texts),
                     titles=titles)
    assert shown.source == "template" and [rejection_kind(r) for r in shown.rejected] == list(bad.values())
    wrong_item = grounded(lambda attempt: "So [1].", [next(e for e in evidence if e.kind == "path")], store, {"i1"},
                          "i4", attempts=1)
    assert [rejection_kind(r) for r in wrong_item.rejected] == ["cites a fact not about the item"]


def test_a_title_the_cited_fact_writes_is_not_another_film(store: MemoryStore, evidence: list[Evidence]) -> None:
    # Found by the all-users check: "Die xue shuang xiong (Killer, The) (1989)" in a fact matched the title
    # of another film, "Killer (1994)", and failed a templated explanation.
    titles = TitleIndex({"i1": "Alpha (1990)", "i3": "Gamma (Killer, The) (1990)", "i9": "Killer (1994)"},
                        min_chars=5)
    path = next(e for e in evidence if e.kind == "path")
    written = [replace(path, text="Alpha (1990) and Gamma (Killer, The) (1990) share the genre Drama")]
    assert check(template(written).text, written, store, {"i1"}, "i3", titles) == ((1,), None)
    # The film itself, named where no cited fact or concerned title writes it, is still caught.
    titles = TitleIndex({"i1": "Alpha (1990)", "i3": "Gamma (1990)", "i9": "Killer (1994)"}, min_chars=5)
    plain = [replace(path, text="Alpha (1990) and Gamma (1990) share the genre Drama")]
    assert check("Like Killer, Gamma shares Alpha's genre [1].", plain, store, {"i1"}, "i3", titles) == (
        (), "names 'Killer', which no cited fact concerns")


def test_a_cited_fact_must_be_used(store: MemoryStore, evidence: list[Evidence]) -> None:
    # Texts the tuned adapter wrote for real picks: valid citations, nothing of the facts said.
    titles = TitleIndex({"i1": "Alpha (1990)", "i3": "Gamma (1990)"}, min_chars=5)
    path = next(e for e in evidence if e.kind == "path")
    stated = [replace(path, text="Alpha (1990) and Gamma (1990) share the director Ridley Scott")]
    assert content_words(stated[0].text, "Gamma (1990)") == {"alpha", "director", "ridley", "scott"}
    for empty in ("The user recommends [1] to the user.", "Gamma (1990) is a recommended item [1]."):
        assert check(empty, stated, store, {"i1"}, "i3", titles) == ((), "cites [1] but uses none of its words")
        assert rejection_kind(f"cites [1] but uses none of its words: {empty!r}") == "cites a fact it does not use"
    assert check("Gamma has Alpha's director [1].", stated, store, {"i1"}, "i3", titles) == ((1,), None)
    assert content_words("Gamma (1990)", "Gamma (1990)") == {"gamma", "1990"}  # nothing but the title: kept
