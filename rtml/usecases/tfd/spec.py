"""Transaction fraud detection: is a card transaction fraudulent? (binary classification)

The world's rule: a transaction's fraud probability is a logistic function of *risk signals*
that mix what the event shows (cvv, billing match, account age, merchant) with what only the
user's history tells (new device, away from home, amount against the user's usual spend, a burst
of recent transactions). The generator draws the label from that probability, so the oracle, which
knows each user's habits, predicts exactly it; a model sees only the event and has to learn the
patterns (card testing, account takeover, merchant collusion) from the stream.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from rtml.entity import Entities, EntityFeature
from rtml.features import Feature, categorical, flag, hour_of_day, log1p, numeric
from rtml.tasks import Classification
from rtml.usecases.base import EventModel, UseCase

ProductCategory = Literal[
    "groceries",
    "electronics",
    "fashion",
    "travel",
    "digital_goods",
    "gift_cards",
    "home",
    "restaurants",
    "health",
    "entertainment",
]
TransactionType = Literal["online", "in_store", "subscription", "transfer"]
PaymentMethod = Literal["credit_card", "debit_card", "wallet", "bank_transfer"]
DeviceType = Literal["mobile", "desktop", "tablet", "pos_terminal"]
Currency = Literal["USD", "EUR", "GBP", "BRL", "INR", "JPY", "CAD", "AUD", "MXN", "NGN"]


#: Units of each currency per US dollar: public reference rates, which a fraud team keeps to
#: compare spend across currencies (the world converts with the same table).
UNITS_PER_USD: dict[str, float] = {
    "USD": 1.0,
    "GBP": 0.8,
    "EUR": 0.92,
    "BRL": 5.0,
    "INR": 83.0,
    "JPY": 150.0,
    "CAD": 1.35,
    "AUD": 1.5,
    "MXN": 17.0,
    "NGN": 1500.0,
}
_RATE_SQL = " ".join(f"WHEN '{c}' THEN {r!r}" for c, r in UNITS_PER_USD.items())

DEVICE = Feature(
    "device",
    "categorical",
    lambda e: f"{e['device_type']}/{e['device_os']}/{e['device_browser']}",
    "device_type || '/' || device_os || '/' || device_browser",
    "the device as one value",
)
LOG_AMOUNT_USD = Feature(
    "log_amount_usd",
    "numeric",
    # floored: a valid amount may be so small that its dollars underflow to zero
    lambda e: math.log(max(float(e["amount"]) / UNITS_PER_USD[e["currency"]], 1e-12)),
    f"ln(greatest(amount / (CASE currency {_RATE_SQL} END), 1e-12))",
    "log of the amount in US dollars: spend is multiplicative",
)
LATITUDE, LONGITUDE = numeric("latitude"), numeric("longitude")
FRAUD = flag("is_fraud")


class Transaction(EventModel):
    transaction_id: str = Field(min_length=1, max_length=64)
    user_id: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime
    amount: float = Field(gt=0, le=1_000_000_000, description="in the transaction's currency")
    currency: Currency
    merchant_id: str = Field(min_length=1, max_length=64)
    product_category: ProductCategory
    transaction_type: TransactionType
    payment_method: PaymentMethod
    country: str = Field(min_length=2, max_length=2, description="ISO 3166 alpha-2")
    city: str = Field(max_length=100)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    device_os: str = Field(max_length=32)
    device_browser: str = Field(max_length=32)
    device_type: DeviceType
    account_age_days: int = Field(ge=0, le=36_500)
    cvv_provided: bool
    billing_address_match: bool
    is_fraud: bool


class FraudTruth(BaseModel):
    fraud_probability: float = Field(ge=0, le=1)
    pattern: Literal["normal", "card_testing", "account_takeover", "merchant_collusion"]


class RiskSignals(BaseModel):
    """What the rule reads: event fields plus what the user's history says about them."""

    new_device: bool
    away_from_home: bool
    amount_ratio: float = Field(gt=0, description="amount / the user's usual amount")
    recent_transactions: int = Field(ge=0, description="by this user in the last minute")
    ring_merchant: bool
    cvv_provided: bool
    billing_address_match: bool
    account_age_days: int


def fraud_probability(s: RiskSignals) -> float:
    """The generator's rule, and therefore the oracle's prediction."""
    logit = (
        -6.5
        + 1.9 * s.new_device
        + 1.6 * s.away_from_home
        + 1.2 * min(max(math.log(s.amount_ratio), 0.0), 3.0)
        + 1.5 * min(max(s.recent_transactions - 2, 0), 4)
        + 3.0 * s.ring_merchant
        + 1.4 * (not s.cvv_provided)
        + 1.1 * (not s.billing_address_match)
        + 0.9 * (s.account_age_days < 30)
    )
    return 1.0 / (1.0 + math.exp(-logit))


def _oracle(truth: BaseModel) -> float:
    assert isinstance(truth, FraudTruth)
    return truth.fraud_probability


SPEC = UseCase(
    name="tfd",
    title="Transaction fraud detection",
    # Missing a fraud costs more than reviewing a false alarm: F2 weighs recall four times
    # precision, so for calibrated probabilities the best threshold sits near F2 / (1 + 2²),
    # about 0.1. The world's odds are additive in what the entity features tell (a new device,
    # away from home, the amount over the usual, a burst, the merchant's record): a logistic
    # regression learns them online (docs/online-learning.md, "Models", has the measurements).
    task=Classification(beta=2.0, decision_threshold=0.1, online="linear"),
    event=Transaction,
    truth=FraudTruth,
    key="user_id",
    target="is_fraud",
    features=(
        numeric("amount"),
        log1p("amount", "spend is multiplicative: ratios matter more than differences"),
        categorical("currency"),
        categorical("merchant_id", "collusion rings are a handful of merchants"),
        categorical("product_category"),
        categorical("transaction_type"),
        categorical("payment_method"),
        categorical("country"),
        categorical("device_os"),
        categorical("device_browser"),
        categorical("device_type"),
        numeric("account_age_days"),
        flag("cvv_provided"),
        flag("billing_address_match"),
        hour_of_day(doc="UTC hour: fraud runs around the clock, people sleep"),
    ),
    entities=Entities(
        id_field="transaction_id",
        # a chargeback (the label) arrives some minutes of event time after the transaction
        label_delay=timedelta(minutes=5),
        features=(
            EntityFeature("user_events", "count", doc="the user's earlier transactions"),
            EntityFeature(
                "user_events_1m",
                "count",
                window=timedelta(minutes=1),
                doc="a burst: the user's transactions in the minute before",
            ),
            EntityFeature(
                "user_amount_vs_usual",
                "diff_to_mean",
                (LOG_AMOUNT_USD,),
                doc="log of the amount over the user's usual spend (geometric mean, USD)",
            ),
            EntityFeature(
                "user_device_seen", "seen", (DEVICE,), doc="the user used this device before"
            ),
            EntityFeature(
                "user_country_share",
                "share_same",
                (categorical("country"),),
                fill=1.0,
                doc="the share of the user's transactions in this country",
            ),
            EntityFeature(
                "user_distance_km",
                "distance",
                (LATITUDE, LONGITUDE),
                doc="how far from where the user usually pays",
            ),
            EntityFeature(
                "user_since_last_s",
                "since_last",
                fill=30 * 86_400.0,
                doc="seconds since the user's previous transaction",
            ),
            EntityFeature(
                "merchant_frauds",
                "sum",
                (FRAUD,),
                entity="merchant_id",
                label=True,
                doc="frauds charged back at this merchant so far",
            ),
            EntityFeature(
                "merchant_fraud_rate",
                "mean",
                (FRAUD,),
                entity="merchant_id",
                label=True,
                doc="the merchant's fraud rate among its charged-back-or-not transactions",
            ),
        ),
    ),
    oracle=_oracle,
    online_model={"learning_rate": 0.02},
)
