"""River's Phishing dataset as a user's own use case: real data, a topic of the user's, no
generator and no oracle.

The spec is all a user writes: the event schema, the key, the label, the features and, here, a
model of their own (River's logistic regression over standardized features). rtml learns it from
the topic test-then-train, exactly as River's own ``evaluate.progressive_val_score`` would: the
example (``python -m examples.phishing``) and its test hold the two scores equal.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, Field

from rtml.features import numeric
from rtml.tasks import Classification
from rtml.usecases.base import EventModel, UseCase

#: The dataset's features, as River names them.
FEATURES = (
    "empty_server_form_handler",
    "popup_window",
    "https",
    "request_from_other_domain",
    "anchor_from_other_domain",
    "is_popular",
    "long_url",
    "age_of_domain",
    "ip_in_url",
)


class Page(EventModel):
    """One web page, judged phishing or not."""

    page_id: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime = Field(description="when the page was seen")
    empty_server_form_handler: float = Field(ge=0, le=1)
    popup_window: float = Field(ge=0, le=1)
    https: float = Field(ge=0, le=1)
    request_from_other_domain: float = Field(ge=0, le=1)
    anchor_from_other_domain: float = Field(ge=0, le=1)
    is_popular: float = Field(ge=0, le=1)
    long_url: float = Field(ge=0, le=1)
    age_of_domain: float = Field(ge=0, le=1)
    ip_in_url: float = Field(ge=0, le=1)
    is_phishing: bool


def logistic_regression(params: dict[str, Any]) -> Any:
    """The user's own online model: standardized features, a logistic regression."""
    from river import linear_model, preprocessing

    return preprocessing.StandardScaler() | linear_model.LogisticRegression(**params)


SPEC = UseCase(
    name="phishing",
    title="Phishing web pages",
    task=Classification(primary_metric="log_loss"),
    event=Page,
    key="page_id",
    target="is_phishing",
    features=tuple(numeric(name) for name in FEATURES),
    model=logistic_regression,
    kafka_topic="phishing.pages",
)
