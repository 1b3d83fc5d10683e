"""Checks on a person's message before anything reads it.

A message is rejected — the turn changes nothing and the reply carries a specific notice — when it is not
valid UTF-8 (bytes) or holds unpaired surrogates (str), is empty or whitespace only, is longer than the
limit, or looks like one of three things that have no place in a request for films:

* **Cypher** (``MATCH (n) DETACH DELETE n``, ``CALL db.…``, ``LOAD CSV`` …). Nothing would run it — chat text
  only ever reaches the graph store as a parameter, never as query text — but a reply that pretends to
  understand it would mislead, so it is named as such.
* **Prompt injection** ("ignore previous instructions…", "you are now…", role markers like ``system:``).
  Message text reaches the LLM only inside the conversation block of ``prompts/chat.yaml``, as data; a
  message that tries to re-instruct the model is not passed on at all.
* **HTML / script** (tags, ``javascript:`` URLs, ``on…=`` handlers): never echoed into a web page.

These are heuristics (documented patterns, below), a second line behind the real defences: parameterised
queries, prompt-as-data, and escaping in the web page. Control characters other than newline and tab are
dropped from accepted text.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CYPHER = re.compile(
    r"\b(?:optional\s+)?match\s*\(\s*\w*\s*(?::\s*\w+)?\s*(?:\{[^}]*\})?\s*\)"  # MATCH (n), MATCH (n:Item {…})
    r"|\b(?:create|merge)\s*\(\s*\w*\s*[:)]"
    r"|\bdetach\s+delete\b"
    r"|\bcall\s+(?:db|dbms|apoc|gds)\.\w"
    r"|\bload\s+csv\b"
    r"|\bdrop\s+(?:index|constraint|database)\b"
    r"|\b(?:set|remove)\s+\w+\s*\.\s*\w+\s*="
    r"|-\s*\[\s*\w*\s*:\s*\w+[^\]]*\]\s*-",  # a relationship pattern -[:REL]-
    re.IGNORECASE)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}"
    r"\b(?:previous|prior|above|earlier|all|your|the|system|these|those)\b[^.!?\n]{0,20}"
    r"\b(?:instructions?|prompts?|rules|messages?|directions|guidelines|context)\b"
    r"|\byou\s+are\s+now\b|\bact\s+as\s+(?:an?\s+)?(?:system|admin|developer|different)\b"
    r"|\b(?:reveal|show|print|repeat)\b[^.!?\n]{0,20}\b(?:system\s+prompt|your\s+(?:instructions|prompt))\b"
    r"|\bnew\s+instructions\s*:|\bjailbreak\b|\bdeveloper\s+mode\b"
    r"|(?:^|\n)\s*(?:system|assistant|developer)\s*:"
    r"|<\|?(?:im_start|im_end|system|endoftext)\|?>",
    re.IGNORECASE)
_HTML = re.compile(
    r"<\s*/?\s*[a-z][a-z0-9-]*(?:\s[^<>]*)?/?\s*>"  # <b>, </div>, <img src=x …>
    r"|<!--|\bjavascript\s*:|\bon[a-z]+\s*=\s*[\"']|&#x?[0-9a-f]+;",
    re.IGNORECASE)


@dataclass(frozen=True)
class Checked:
    """``text``: the message to parse (None when rejected); ``notice``: why it was rejected."""

    text: str | None
    notice: str | None = None
    kind: str | None = None  # "encoding", "empty", "too_long", "cypher", "injection", "html"


def check_message(message: str | bytes, *, max_chars: int) -> Checked:
    """Decode and screen one message (see the module docstring)."""
    if isinstance(message, (bytes, bytearray)):
        if len(message) > 4 * max_chars:  # even pure 4-byte UTF-8 would be too long; skip decoding it
            return _too_long(max_chars)
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError as exc:
            return Checked(None, f"Your message is not valid UTF-8 text (byte {exc.start}); please send it as "
                                 "plain UTF-8 text.", "encoding")
    if not isinstance(message, str):
        return Checked(None, f"A message must be text, not {type(message).__name__}.", "encoding")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as exc:
        return Checked(None, f"Your message holds an invalid character (position {exc.start}); please send plain "
                             "UTF-8 text.", "encoding")
    if len(message) > max_chars:
        return _too_long(max_chars)
    text = "".join(ch for ch in message if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    if not text.strip():
        return Checked(None, "Your message is empty. Tell me a film you liked, a genre or a period, "
                             "e.g. “something like Fargo, but no horror”.", "empty")
    if _CYPHER.search(text):
        return Checked(None, "Your message looks like a database query (Cypher). Nothing was run — I only read "
                             "film requests. Tell me a film, genre or period you would like instead.", "cypher")
    if _INJECTION.search(text):
        return Checked(None, "Your message looks like instructions for the assistant itself; it was not "
                             "passed on. Tell me a film, genre or period you would like instead.", "injection")
    if _HTML.search(text):
        return Checked(None, "Your message contains HTML or script markup, which I do not read. Please send "
                             "plain text, e.g. “something like Fargo, but no horror”.", "html")
    return Checked(text)


def _too_long(max_chars: int) -> Checked:
    return Checked(None, f"Your message is longer than {max_chars:,} characters; please send a shorter one.",
                   "too_long")
