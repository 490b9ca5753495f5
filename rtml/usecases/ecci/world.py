"""Shopping sessions from returning customers, each of a latent segment that shapes behaviour.

The segment decides the odds of each event type, the categories, prices and discounts, the time
on a page, how long sessions run, the device and where the customer came from. Profiles overlap
(everyone views pages; a bargain hunter sometimes buys electronics), so segments are clusters in
feature space, not a lookup. The segment goes into the truth record only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from rtml.usecases.ecci.spec import SEGMENTS, Segment
from rtml.usecases.world import EPOCH, EventGenerator, Generated

N_CUSTOMERS = 2000
SEGMENT_SHARE = {
    "bargain_hunter": 0.35,
    "window_shopper": 0.30,
    "loyal_big_spender": 0.15,
    "impulse_buyer": 0.20,
}


@dataclass(frozen=True)
class Profile:
    events: dict[str, float]
    categories: dict[str, float]
    log_price: tuple[float, float]  # mean and spread of log(price)
    discount: tuple[float, float]  # uniform range, percent
    log_time_on_page: tuple[float, float]
    session_continue: float  # chance the next event continues the session
    devices: dict[str, float]
    referrers: dict[str, float]


PROFILES: dict[Segment, Profile] = {
    "bargain_hunter": Profile(
        {
            "page_view": 0.35,
            "search": 0.30,
            "add_to_cart": 0.15,
            "wishlist": 0.10,
            "purchase": 0.10,
        },
        {"grocery": 0.3, "fashion": 0.25, "home": 0.2, "toys": 0.15, "electronics": 0.1},
        (math.log(15), 0.4),
        (25, 60),
        (math.log(40), 0.4),
        0.75,
        {"mobile": 0.7, "desktop": 0.2, "tablet": 0.1},
        {"email": 0.4, "search": 0.3, "ads": 0.2, "direct": 0.1},
    ),
    "window_shopper": Profile(
        {
            "page_view": 0.60,
            "search": 0.25,
            "wishlist": 0.10,
            "add_to_cart": 0.04,
            "purchase": 0.01,
        },
        {"fashion": 0.3, "beauty": 0.2, "electronics": 0.2, "books": 0.2, "sports": 0.1},
        (math.log(60), 0.5),
        (0, 10),
        (math.log(150), 0.4),
        0.92,
        {"desktop": 0.5, "tablet": 0.3, "mobile": 0.2},
        {"social": 0.4, "search": 0.4, "direct": 0.2},
    ),
    "loyal_big_spender": Profile(
        {
            "purchase": 0.30,
            "add_to_cart": 0.25,
            "page_view": 0.35,
            "search": 0.05,
            "wishlist": 0.05,
        },
        {"electronics": 0.4, "home": 0.3, "sports": 0.2, "fashion": 0.1},
        (math.log(350), 0.4),
        (0, 5),
        (math.log(35), 0.4),
        0.7,
        {"desktop": 0.7, "mobile": 0.2, "tablet": 0.1},
        {"direct": 0.6, "email": 0.4},
    ),
    "impulse_buyer": Profile(
        {
            "page_view": 0.40,
            "add_to_cart": 0.25,
            "purchase": 0.25,
            "search": 0.05,
            "wishlist": 0.05,
        },
        {"fashion": 0.4, "beauty": 0.3, "toys": 0.2, "sports": 0.1},
        (math.log(45), 0.4),
        (5, 25),
        (math.log(10), 0.4),
        0.6,
        {"mobile": 0.9, "tablet": 0.05, "desktop": 0.05},
        {"social": 0.6, "ads": 0.4},
    ),
}
assert set(PROFILES) == set(SEGMENTS)


@dataclass
class Customer:
    customer_id: str
    segment: Segment
    session_id: str = ""
    pages: int = 0


class InteractionGenerator(EventGenerator):
    usecase = "ecci"

    def __init__(self, seed: int = 0, start: datetime = EPOCH, events_per_second: float = 20.0):
        super().__init__(seed, start, events_per_second)
        self.customers = [
            Customer(f"c-{i:05d}", self.pick(SEGMENT_SHARE)) for i in range(N_CUSTOMERS)
        ]

    def generate(self) -> Generated:
        rng = self.rng
        c = rng.choice(self.customers)
        p = PROFILES[c.segment]
        if not c.session_id or rng.random() > p.session_continue:
            c.session_id, c.pages = self.new_id("s"), 0
        c.pages += 1
        event_type = self.pick(p.events)
        buys = event_type in ("add_to_cart", "purchase")
        event = {
            "event_id": self.new_id("ev"),
            "customer_id": c.customer_id,
            "session_id": c.session_id,
            "timestamp": self.timestamp(),
            "event_type": event_type,
            "product_category": self.pick(p.categories),
            "price": round(math.exp(rng.gauss(*p.log_price)), 2),
            "quantity": rng.randint(1, 3) if buys else 0,
            "discount_pct": round(rng.uniform(*p.discount), 1),
            "time_on_page_s": round(math.exp(rng.gauss(*p.log_time_on_page)), 1),
            "pages_viewed": c.pages,
            "device_type": self.pick(p.devices),
            "referrer": self.pick(p.referrers),
        }
        return Generated(c.customer_id, event, {"segment": c.segment})
