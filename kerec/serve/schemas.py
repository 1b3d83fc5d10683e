"""Request and response bodies (pydantic), so ``/openapi.json`` documents every endpoint exactly.

Unknown fields of kerec's own requests are errors, so a typo such as ``"K": 5`` is reported instead of
silently ignored, and types are strict: ``"k": true`` or ``"k": "5"`` is not a number, ``"stream": "yes"``
not a boolean (JSON's own types, no coercion). (pydantic itself rejects strings holding a lone UTF-16
surrogate such as ``"\\ud800"``: valid JSON, but no valid text.)"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from kerec.chat.engine import MAX_SESSION_ID


Id = Annotated[StrictStr, Field(min_length=1, max_length=200)]
# One rule for POST /chat and DELETE /chat/{session}: this length here, printable characters in the engine.
SESSION_ID = {"min_length": 1, "max_length": MAX_SESSION_ID}
SessionId = Annotated[StrictStr, Field(**SESSION_ID, description="any printable id the client picks (\"/\" "
                                       "included); turns with the same id form one conversation")]


def finite(x: float | None) -> float | None:
    """JSON has no NaN or infinity: such a score is sent as null."""
    return x if x is not None and math.isfinite(x) else None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---- recommendations ---------------------------------------------------------------------------------
class RecommendRequest(Strict):
    user: Id = Field(description="user id as in the dataset")
    k: int = Field(10, ge=1, description="number of items (at most the server's max_k)")
    explain: bool = Field(True, description="explain each item from KG facts")
    exclude_seen: bool = True
    candidates: list[Id] | None = Field(None, min_length=1, description="rank only these item ids")


class EvidenceOut(BaseModel):
    n: int = Field(description="the number [n] explanations cite")
    text: str
    kind: str = Field(description='"path" (links the history to the item) or "attribute"')
    score: float | None
    fact_ids: list[str]


class RecommendationOut(BaseModel):
    item_id: str
    title: str
    rank: int
    score: float | None
    gnn_score: float | None
    llm_logprob: float | None
    explanation: str | None
    explanation_source: str | None
    cited_facts: list[str]
    cited: list[int]
    basis: str
    evidence: list[EvidenceOut]

    @classmethod
    def of(cls, rec: dict[str, Any]) -> RecommendationOut:
        """From ``Recommendation.to_dict()``, non-finite numbers as null."""
        out = dict(rec)
        for key in ("score", "gnn_score", "llm_logprob"):
            out[key] = finite(out.get(key))
        out["evidence"] = [{**e, "score": finite(e.get("score"))} for e in out.get("evidence", [])]
        return cls.model_validate(out)


class RecommendResponse(BaseModel):
    user: str
    k: int
    recommendations: list[RecommendationOut]


# ---- chat --------------------------------------------------------------------------------------------
class ChatRequest(Strict):
    session: SessionId
    message: str = Field(description="what the user said")
    user: Id | None = Field(None, description="a dataset user id: recommendations start from their history")
    k: int | None = Field(None, ge=1)


class ReferenceOut(BaseModel):
    n: int = Field(description="the number [n] the reply text cites")
    item_id: str
    text: str
    kind: str
    fact_ids: list[str]


class ChatResponse(BaseModel):
    """``ChatReply.to_dict()`` of :mod:`kerec.chat` (fields it may add later pass through)."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    text: str = Field(description="the reply; every [n] in it is references[n]")
    recommendations: list[RecommendationOut]
    question: str | None = Field(None, description="set when the reply asks something back")
    constraints: dict[str, Any] = Field(default_factory=dict, description="what the conversation asked for so far")
    notice: str | None = Field(None, description="set when the message was not used (empty, too long, markup…)")
    references: list[ReferenceOut] = Field(default_factory=list)
    text_source: str | None = Field(None, description='"template", "llm", "llm-retry", "question" or "notice"')
    understood: dict[str, Any] = Field(default_factory=dict, description="what this message was read to say")
    dropped: str | None = Field(None, description="set on the first turn after the server dropped this conversation "
                                "(too many sessions, or idle too long): why; this turn started a new one")


class ResetResponse(BaseModel):
    session: str
    reset: bool


# ---- items, health -----------------------------------------------------------------------------------
class NodeOut(BaseModel):
    key: str
    label: str
    id: str
    name: str = Field(description="title, entity name, or for an unnamed entity its role and films "
                                  "(\"director of Fargo, Raising Arizona +3\")")


class FactOut(BaseModel):
    id: str
    relation: str
    direction: Literal["out", "in"] = Field(description='"out": the item is the head; "in": the tail')
    other: NodeOut
    text: str = Field(description="the fact as one readable line")


class ItemResponse(BaseModel):
    item_id: str
    title: str
    facts: list[FactOut]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    store: str
    dataset: str | None = None
    llm: str | None = None
    chat: bool
    sessions: int | None = Field(None, description="live chat sessions")
    reason: str | None = None


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


# ---- OpenAI-compatible -------------------------------------------------------------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text or "" for p in self.content if p.type == "text")


class ChatCompletionRequest(BaseModel):
    # OpenAI clients send many sampling options; they are accepted and have no effect (documented).
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[OpenAIMessage] = Field(min_length=1)
    user: Id | None = Field(None, description="continues one conversation per value (OpenAI's end-user id)")
    stream: StrictBool = False
    n: StrictInt = Field(1, ge=1, le=1, description="only 1 choice is produced")
    kerec_user: Id | None = Field(None, description="extension: a dataset user id to personalise from")
    kerec_k: StrictInt | None = Field(None, ge=1, description="extension: number of items")


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: None = Field(None, description="token counts are not tracked")
    kerec: ChatResponse = Field(description="extension: the full reply with recommendations and evidence")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "kerec"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
