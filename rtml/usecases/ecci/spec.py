"""E-commerce customer interactions: which segment does a shopper's behaviour fall in? (clustering)

The world's rule: every returning customer belongs to one latent segment (bargain hunters, window
shoppers, loyal big spenders, impulse buyers), and the segment shapes each interaction: which
events, categories and prices, how long on a page, which device and referrer. The segment travels
*beside* the event (in the truth record, a Kafka header), for evaluation only: it is never a field
of the event and never a feature. The oracle's clustering is the true segments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from rtml.features import categorical, log1p, numeric
from rtml.tasks import Clustering
from rtml.usecases.base import EventModel, UseCase

Segment = Literal["bargain_hunter", "window_shopper", "loyal_big_spender", "impulse_buyer"]
SEGMENTS: tuple[Segment, ...] = (
    "bargain_hunter",
    "window_shopper",
    "loyal_big_spender",
    "impulse_buyer",
)

EventType = Literal["page_view", "search", "add_to_cart", "wishlist", "purchase"]
Category = Literal[
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "books",
    "toys",
    "grocery",
]
DeviceType = Literal["mobile", "desktop", "tablet"]
Referrer = Literal["direct", "search", "social", "email", "ads"]


class Interaction(EventModel):
    event_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    session_id: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime
    event_type: EventType
    product_category: Category
    price: float = Field(ge=0, le=100_000)
    quantity: int = Field(ge=0, le=1_000)
    discount_pct: float = Field(ge=0, le=100)
    time_on_page_s: float = Field(ge=0, le=86_400)
    pages_viewed: int = Field(ge=1, le=10_000, description="in this session so far")
    device_type: DeviceType
    referrer: Referrer


class SegmentTruth(BaseModel):
    segment: Segment


def _oracle(truth: BaseModel) -> str:
    assert isinstance(truth, SegmentTruth)
    return truth.segment


SPEC = UseCase(
    name="ecci",
    title="E-commerce customer interactions",
    task=Clustering(),
    event=Interaction,
    truth=SegmentTruth,
    key="customer_id",
    target=None,
    features=(
        log1p("price"),
        numeric("quantity"),
        numeric("discount_pct"),
        log1p("time_on_page_s"),
        log1p("pages_viewed"),
        categorical("event_type"),
        categorical("product_category"),
        categorical("device_type"),
        categorical("referrer"),
    ),
    oracle=_oracle,
    # Chosen by a grid over generated events: River's defaults keep ~2 clusters, small
    # thresholds shatter the stream (docs/online-learning.md, "Models", has the grid and figures).
    online_model={
        "clustering_threshold": 2.5,
        "fading_factor": 0.003,
        "cleanup_interval": 50,
        "intersection_factor": 0.1,
        "minimum_weight": 6.0,
    },
)
