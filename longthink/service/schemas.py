"""The service's wire types (pydantic): what ``/v1/runs`` takes and returns, and the OpenAI-compatible chat
types. The OpenAPI document at ``/openapi.json`` is generated from them. Unknown fields are refused (a typo in
an option is a 422 naming it, not an option silently ignored), except in the OpenAI-compatible body, where
clients send fields we do not use."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from longthink.service.jobs import JobStatus

API_VERSION = "1"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunCreate(Strict):
    """A run to start: the request, and how to search it."""

    request: str = Field(min_length=1, description="What to solve.")
    domain: str | None = Field(None, description="A domain pack, 'general', or None/'auto' to detect it.")
    strategy: str | None = Field(None, description="A search strategy for every step, or 'auto' (default).")
    strategy_options: dict[str, Any] = Field(default_factory=dict, description="Options of the strategy.")
    budget_tokens: int | None = Field(None, ge=1, le=10_000_000, description="Generated-token budget of the run.")
    answer_mode: Literal["auto", "text", "program"] | None = None
    approve_plan: bool = Field(False, description="Wait for POST /v1/runs/{id}/approve before running the plan.")
    ask_missing: bool = Field(
        False,
        description="When the request lacks facts its plan needs (a business plan's revenue and profit), wait for "
        "POST /v1/runs/{id}/answer (the questions are in the run's pending_questions); off, each question's stated "
        "default is used, labelled as an assumption.",
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="Text files attached to the request (name -> content)."
    )
    webhook_url: str | None = Field(None, description="POSTed a signed summary when the run finishes.")
    model: str | None = Field(None, description="Must name the served model if given (one model per server).")


class Spend(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0


class StepView(BaseModel):
    id: str
    goal: str | None = None
    kind: str | None = None
    strategy: str | None = None
    status: str | None = None
    answer: str | None = None
    verified: bool | None = None
    error: str | None = None


class QuestionView(BaseModel):
    """A fact the run asks for: answer it by ``id``; ``default`` is what is assumed when it is not answered."""

    id: str
    text: str
    default: str
    why: str = ""


class RunView(BaseModel):
    """One run as the service reports it. ``status`` is the run's status (see the events' ``answer``) or
    ``queued`` (not started yet) or ``cancelled``."""

    id: str
    status: JobStatus
    request: str
    domain: str | None = None
    answer: str | None = None
    error: str | None = None
    plan: dict[str, Any] | None = None
    pending_plan: dict[str, Any] | None = Field(None, description="The plan waiting for approval, if any.")
    pending_questions: list[QuestionView] | None = Field(
        None, description="The questions a run awaiting input asks (answer with POST /v1/runs/{id}/answer)."
    )
    pending_error: str | None = Field(None, description="Why the last answers or plan edit were not enough, if so.")
    steps: list[StepView] = Field(default_factory=list)
    spend: Spend = Field(default_factory=Spend)
    artifacts: list[str] = Field(default_factory=list, description="Names for GET .../artifacts/{name}.")
    created_at: float
    finished_at: float | None = None
    events_url: str


class RunCreated(BaseModel):
    id: str
    status: JobStatus
    events_url: str


class RunList(BaseModel):
    runs: list[RunView]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class Decision(Strict):
    """A decision on a plan waiting for approval."""

    action: Literal["approve", "edit", "reject"]
    plan: dict[str, Any] | None = Field(None, description="The edited plan (action 'edit').")
    feedback: str | None = Field(None, description="Why the plan is rejected (action 'reject'): the planner reads it.")


class Answers(Strict):
    """Answers to the questions of a run awaiting input: ``answers`` by question id (a question left out takes its
    default, labelled as an assumption), or ``use_defaults`` to take every default."""

    answers: dict[str, str] = Field(default_factory=dict, description="Question id -> the answer, in words.")
    use_defaults: bool = Field(False, description="Take every question's default (labelled as an assumption).")


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


# -- the OpenAI-compatible API ----------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class LongthinkOptions(Strict):
    """``extra_body={"longthink": {...}}`` in the OpenAI clients."""

    strategy: str | None = None
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    budget_tokens: int | None = Field(None, ge=1, le=10_000_000)
    domain: str | None = None
    answer_mode: Literal["auto", "text", "program"] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="One answer per request (the search samples inside).")
    longthink: LongthinkOptions | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "longthink"
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
