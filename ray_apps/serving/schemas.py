"""The API's answers: one pydantic model per answer, grouped by concern.

Every route declares the model of its answer, so ``/openapi.json`` carries every shape and the UI's
API types are generated from it (``frontend/src/lib/api/schema.d.ts``), not written by hand.

The shapes are those the API has always answered. A key that an answer may leave out (a
dependency's ``detail`` while it is fine, the champion's ``run_id`` while there is none) is a field
with a default, and the routes that have such keys answer with ``response_model_exclude_unset``:
an answer never gains a key its route did not give. What a prediction holds depends on the use
case, so those answers are built per use case from its task (:func:`prediction_answers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import UnionType
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from rtml.features import FeatureKind
from rtml.usecases import get

#: A model parameter or a sweep's configuration value: what a JSON scalar can be.
Param = int | float | str | bool | None
#: What a route declares as its answer: a model, or a union of models (one of which answers).
AnswerModel = type[BaseModel] | UnionType
#: Scores by metric name; ``None`` where a score is undefined (NaN, which JSON cannot carry: the
#: ROC AUC of rows of one class, a metric before its first event).
Scores = dict[str, float | None]


# -- errors ----------------------------------------------------------------------------------------


class FieldError(BaseModel):
    """One bad field of one event: where, what, and (shortened) what was given."""

    field: str
    message: str
    index: int | None = Field(None, description="the event's place in a list request")
    input: str | None = None


class Problem(BaseModel):
    """Every error answer: a message, or one entry per bad field (422)."""

    detail: str | list[FieldError]


# -- the service: use cases, health, links ---------------------------------------------------------


class Feature(BaseModel):
    name: str
    kind: FeatureKind
    doc: str


class UseCaseInfo(BaseModel):
    """A use case: its task (with the task's parameters), target, entity key, topic, features."""

    name: str
    title: str
    task: str
    primary_metric: str
    decision_threshold: float | None = Field(description="where answers are decisions")
    beta: float | None = Field(None, description="F-beta's beta (classification only)")
    target: str | None
    key: str
    topic: str
    features: list[Feature]
    entity_fields: list[str] = Field(
        description="the fields that name entities with features (look one up at "
        "/api/v1/{usecase}/entities/{field}/{value})"
    )


class UseCases(BaseModel):
    usecases: list[UseCaseInfo]


class DependencyHealth(BaseModel):
    ok: bool
    ms: float | None = Field(None, description="how long the probe took (not for Ray)")
    detail: str | None = Field(None, description="what is wrong (only when not ok)")


class IncrementalHealth(BaseModel):
    learners_running: int
    shards: int
    fallback_versions: dict[int, int] = Field(description="shard → checkpoint copy's version")
    serving: bool


class BatchHealth(BaseModel):
    version: int | None
    reason: str | None = Field(None, description="why no champion is served (only then)")


class UseCaseHealth(BaseModel):
    incremental: IncrementalHealth
    batch: BatchHealth


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyHealth]
    usecases: dict[str, UseCaseHealth]


class Links(BaseModel):
    """Where the stack's own consoles are."""

    ray_dashboard: str
    mlflow: str
    prometheus: str


# -- the lake ----------------------------------------------------------------------------------


class SqlResult(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="one object per row, keyed by column")
    row_count: int
    truncated: bool = Field(description="more rows existed than the row limit")
    seconds: float


class Column(BaseModel):
    name: str
    type: str = Field(description="the DuckDB type")


class LakeTable(BaseModel):
    name: str
    rows: int
    files: int
    version: int = Field(description="the Delta table's version")
    partition_by: list[str]
    columns: list[Column]


class LakeTables(BaseModel):
    tables: list[LakeTable]


# -- entity memories: what the features of an event's users, drivers, merchants were read from ---

#: A feature's value: a number, or a categorical's string.
FeatureValues = dict[str, float | str]


class EntityMemory(BaseModel):
    """One entity's memory as the learner stored it: how fresh the features read from it are."""

    field: str = Field(description="the event field that names the entity (user_id, …)")
    value: str
    events: int = Field(description="earlier events the memory holds")
    newest_event_at: str = Field(description="the entity's newest event time (ISO 8601)")
    watermark_at: str = Field(description="the learner's newest event time when it wrote")
    written_at: str = Field(description="when the learner wrote the memory (wall clock)")
    age_s: float = Field(description="seconds since the write")


class EntityLookup(BaseModel):
    """An entity looked up: its stored memory and the features its next event would get."""

    usecase: str
    memory: EntityMemory
    at: str = Field(description="the next event's time the features are computed for")
    features: dict[str, float] = Field(description="the entity features of that next event")
    inputs: dict[str, float | str | None] = Field(
        description="the values the next event is taken to have (the entity's newest event's)"
    )
    label_known: int = Field(description="events whose label is known by ``at``")


# -- predictions, explanations and feedback (the prediction's shape is the use case's) -----------


class IncrementalAnswer(BaseModel):
    """What an online model's answer carries beside its prediction(s)."""

    usecase: str
    kind: Literal["incremental"]
    model_version: int = Field(description="the oldest checkpoint version among the shards asked")
    learned: int = Field(description="events the answering shards have learned")
    checkpoint_age_s: float | None
    source: str = Field(description="who answered: learner, checkpoint, or checkpoint+learner")
    shards: int = Field(description="shards that answered")


class BatchAnswer(BaseModel):
    """What the champion's answer carries beside its prediction(s)."""

    usecase: str
    kind: Literal["batch"]
    model_version: int


class Explanation(BaseModel):
    """Per-feature contributions of one event to the champion's prediction."""

    usecase: str
    kind: Literal["batch"]
    contributions: dict[str, float]
    model_version: int
    explained_as: str = Field(description="what the contributions are (SHAP values, …)")
    features: FeatureValues = Field(description="the features explained, name → value")
    entities_as_of: list[EntityMemory] = Field(
        description="the entity memories read (none: the features of entities with no history)"
    )


@dataclass(frozen=True)
class PredictionAnswers:
    """A use case's answers that hold its predictions; a predict answer is one of two: to one
    event (``prediction``), or to a list (``predictions``, in order)."""

    incremental: AnswerModel
    batch: AnswerModel
    explanation: type[BaseModel]


@cache
def prediction_answers(usecase: str) -> PredictionAnswers:
    """The use case's prediction (its task's ``answer_fields``) and the answers that carry it,
    named after the use case (``TfdPrediction``, ``TfdIncrementalAnswer``, …)."""
    spec = get(usecase)
    name = spec.name.capitalize()
    prediction = create_model(  # type: ignore[call-overload]
        f"{name}Prediction",
        __doc__=f"What the models of {spec.name} ({spec.title}) answer for one event.",
        **spec.task.answer_fields(spec),
    )
    many = list[prediction]  # type: ignore[valid-type]
    # with ?features=true: the features used, and the entity memories they were read from
    shown_one = {
        "features": (FeatureValues | None, Field(None, description="the features used")),
        "entities_as_of": (
            list[EntityMemory] | None,
            Field(None, description="the entity memories read (none: no history)"),
        ),
    }
    shown_many = {
        "features": (list[FeatureValues] | None, Field(None, description="each event's")),
        "entities_as_of": (list[list[EntityMemory]] | None, Field(None, description="each's")),
    }

    def answer(kind: str, base: type[BaseModel], **fields: Any) -> type[BaseModel]:
        return create_model(f"{name}{kind}", __base__=base, **fields)

    return PredictionAnswers(
        incremental=answer(
            "IncrementalAnswer", IncrementalAnswer, prediction=(prediction, ...), **shown_one
        )
        | answer("IncrementalListAnswer", IncrementalAnswer, predictions=(many, ...), **shown_many),
        batch=answer(
            "BatchAnswer",
            BatchAnswer,
            prediction=(prediction, ...),
            cached=(bool, Field(description="answered from the prediction cache")),
            **shown_one,
        )
        | answer(
            "BatchListAnswer",
            BatchAnswer,
            predictions=(many, ...),
            cached=(list[bool], ...),
            **shown_many,
        ),
        explanation=answer("Explanation", Explanation, prediction=(prediction, ...)),
    )


class Placed(BaseModel):
    partition: int
    offset: int


class Feedback(BaseModel):
    """Labelled events accepted: where each was written (in order)."""

    usecase: str
    accepted: int
    topic: str
    offsets: list[Placed]


# -- the learners ------------------------------------------------------------------------------


class CheckpointStatus(BaseModel):
    version: int | None = None
    age_s: float | None = None
    bytes: int | None = None
    seconds: float | None = Field(None, description="how long the last checkpoint took")


class SnapshotStatus(BaseModel):
    version: int | None = None
    bytes: int | None = None
    at: float | None = None
    error: str | None = None


class PrequentialReport(BaseModel):
    """Test-then-train metrics: over every event, over the recent ones, the oracle's and the
    reachable ceiling's (the best a model with perfect memory of each entity could do)."""

    events: int
    primary: str
    overall: Scores
    recent: Scores
    oracle: Scores | None
    share_of_oracle: Scores
    ceiling: Scores | None = None
    share_of_ceiling: Scores = Field(default_factory=dict)
    window: int | None = Field(None, description="events in the recent figures")
    recent_share_of_oracle: Scores = Field(default_factory=dict)
    recent_share_of_ceiling: Scores = Field(default_factory=dict)
    n_clusters: int | None = Field(None, description="clustering only")


class LearnerStatus(BaseModel):
    """One learner shard as it reports itself; a learner that does not run reports its stored
    checkpoint instead, and a stopped one says whether this call stopped it."""

    usecase: str
    shard: int
    running: bool
    stopped: bool | None = None
    error: str | None = None
    waiting_for: str | None = None
    refused: str | None = None
    restoring: bool | None = None
    restored_from: str | None = None
    learned: int | None = None
    dead_lettered: int | None = None
    model_errors: int | None = None
    events_per_s: float | None = None
    offsets: dict[int, int] | None = Field(None, description="partition → next offset to read")
    lag: dict[int, int] | None = Field(None, description="partition → events not read yet")
    checkpoint: CheckpointStatus | None = None
    checkpoint_error: str | None = None
    checkpoint_failures: int | None = None
    snapshot: SnapshotStatus | None = None
    checkpoint_share: float | None = None
    checkpoint_seconds: float | None = None
    first_event_at: float | None = None
    last_event_at: float | None = None
    metrics: PrequentialReport | None = None


class Learners(BaseModel):
    usecase: str
    learners: list[LearnerStatus]


class LearnerReset(BaseModel):
    usecase: str
    shard: int
    checkpoint: Literal["deleted"]
    snapshots: Literal["retired"]


class LearnersReset(BaseModel):
    usecase: str
    learners: list[LearnerReset]


# -- both models of a use case ---------------------------------------------------------------------


class CheckpointAge(BaseModel):
    version: int
    age_s: float


class FallbackCopy(BaseModel):
    version: int
    learned: int


class OnlineModel(BaseModel):
    model: str
    params: dict[str, Param]
    checkpoints: dict[int, CheckpointAge] = Field(description="shard → its latest checkpoint")
    fallback: dict[int, FallbackCopy] = Field(description="shard → this replica's copy")


class Champion(BaseModel):
    """The batch model served; without one, the reason."""

    version: int | None
    reason: str | None = None
    run_id: str | None = None
    metrics: Scores | None = None
    feature_importance: dict[str, float] | None = None
    checked_at: float | None = None
    refused: dict[int, str] = Field(description="versions whose files failed their signature")


class ModelInfo(BaseModel):
    usecase: str
    features: list[Feature]
    incremental: OnlineModel
    batch: Champion


# -- the batch models: registry, sweeps, evaluation ---------------------------------------------


class Version(BaseModel):
    """A registered version: holdout scores, share of the oracle, aliases, the gate's decision."""

    version: int
    run_id: str
    aliases: list[str]
    metrics: Scores
    gate: str | None = Field(description="promoted, rejected or first (None: not gated)")
    created: float
    share_of_oracle: float | None
    gate_champion_version: int | None
    gate_champion_score: float | None
    params: str | None


class Versions(BaseModel):
    usecase: str
    model: str
    primary_metric: str
    higher_is_better: bool
    versions: list[Version]


class ChampionMoved(BaseModel):
    usecase: str
    champion: int = Field(description="the champion's version now")


class SweepStarted(BaseModel):
    usecase: str
    job_id: str
    trials: int


class SweepJob(BaseModel):
    job_id: str
    status: str = Field(description="the Ray job's status: PENDING, RUNNING, SUCCEEDED, …")
    message: str | None
    entrypoint: str
    start_time: float | None
    end_time: float | None


class SweepJobs(BaseModel):
    usecase: str
    sweeps: list[SweepJob]


class SweepProgress(BaseModel, extra="allow"):
    """One finished trial; the primary metric's value is under its own name (the one key not
    declared here, passed on as the sweep wrote it)."""

    done: int
    total: int
    trial: str | None = None
    valid_loss: float | None = None
    rounds: int | None = None
    stopped_early: bool | None = None


class Gate(BaseModel):
    version: int
    decision: str
    metric: str
    candidate_score: float
    champion_version: int | None
    champion_score: float | None


class SweepOutcome(BaseModel):
    usecase: str
    trials: int
    rows: dict[str, int] = Field(description="rows in train, valid and holdout")
    best_config: dict[str, Param]
    best_valid: Scores
    version: int
    holdout: Scores
    oracle: Scores | None
    gate: Gate
    seconds: float


class SweepStatus(SweepJob):
    usecase: str
    sweep: str | None = Field(description="the sweep's id, which tags its trials")
    done: int
    total: int | None
    progress: list[SweepProgress]
    result: SweepOutcome | None
    said: list[str] = Field(description="the last lines the sweep wrote for people")


class Trial(BaseModel):
    run_id: str
    sweep: str | None
    status: str
    params: dict[str, str]
    metrics: Scores
    start_time: float


class Trials(BaseModel):
    usecase: str
    primary_metric: str
    trials: list[Trial]


class Confusion(BaseModel):
    tp: int
    fp: int
    fn: int
    tn: int


class RocPoint(BaseModel):
    fpr: float
    tpr: float
    threshold: float | None


class PrPoint(BaseModel):
    recall: float
    precision: float
    threshold: float | None


class ClassificationView(BaseModel):
    """The confusion matrix at the decision threshold; ROC and precision–recall curves when
    both classes occur."""

    threshold: float
    confusion: Confusion
    positives: int
    roc: list[RocPoint] | None = None
    pr: list[PrPoint] | None = None


class PredictedPoint(BaseModel):
    actual: float
    predicted: float


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class RegressionView(BaseModel):
    points: list[PredictedPoint]
    residuals: Histogram
    mean_residual: float


class ProjectedPoint(BaseModel):
    x: float
    y: float
    cluster: int
    segment: str


class ClusteringView(BaseModel):
    sizes: dict[int, int] = Field(description="cluster → events")
    projection: list[ProjectedPoint] | None = None
    explained_variance: list[float] | None = None


class Evaluation(BaseModel):
    """The champion on the newest events of the lake, beside the oracle, with its task's view
    (under the task's name)."""

    usecase: str
    version: int
    rows: int
    scores: Scores
    oracle: Scores | None
    task: str
    classification: ClassificationView | None = None
    regression: RegressionView | None = None
    clustering: ClusteringView | None = None
