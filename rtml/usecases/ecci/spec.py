"""E-commerce customer interactions: which segment does a shopper's behaviour fall in? (clustering)

The world's rule: every returning customer belongs to one latent segment (bargain hunters, window
shoppers, loyal big spenders, impulse buyers), and the segment shapes each interaction: which
events, categories and prices, how long on a page, which device and referrer. The segment travels
*beside* the event (in the truth record, a Kafka header), for evaluation only: it is never a field
of the event and never a feature. The oracle's clustering is the true segments.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from rtml.entity import Entities, EntityFeature
from rtml.features import Feature, categorical, log1p, numeric
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


def _is(field: str, values: tuple[str, ...]) -> Feature:
    """1.0 when ``field`` is one of ``values``: what a customer's share of such events averages."""
    name = f"{field}_is_{'_'.join(values)}"
    listed = ", ".join(f"'{v}'" for v in values)
    return Feature(
        name,
        "numeric",
        lambda e: float(e[field] in values),
        f"CASE WHEN {field} IN ({listed}) THEN 1.0 ELSE 0.0 END",
    )


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
    entities=Entities(
        id_field="event_id",
        features=(
            EntityFeature("customer_events", "count", doc="the customer's earlier interactions"),
            EntityFeature(
                "customer_log_price",
                "mean",
                (log1p("price"),),
                doc="the prices the customer looks at",
            ),
            EntityFeature(
                "customer_discount",
                "mean",
                (numeric("discount_pct"),),
                doc="the discounts the customer goes for",
            ),
            EntityFeature(
                "customer_log_time_on_page",
                "mean",
                (log1p("time_on_page_s"),),
                doc="how long the customer reads a page",
            ),
            EntityFeature(
                "customer_buy_share",
                "mean",
                (_is("event_type", ("add_to_cart", "purchase")),),
                doc="the share of the customer's interactions that buy",
            ),
            EntityFeature(
                "customer_mobile_share",
                "mean",
                (_is("device_type", ("mobile",)),),
                doc="the share of the customer's interactions on a phone",
            ),
        ),
        horizon=timedelta(days=30),
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
