"""Card transactions from returning users with habits, and fraud as distinct patterns.

Each user has a home country and city, a usual spend, one or two devices, favourite categories
and an account age. Most transactions follow the habits; a few follow a fraud pattern:

- card testing: a burst of tiny online charges on digital goods, often without CVV, new device;
- account takeover: a new desktop device, away from home, a large amount, address mismatch;
- merchant collusion: round amounts at one of a handful of ring merchants.

The label is then drawn from :func:`rtml.usecases.tfd.spec.fraud_probability` of the risk
signals, so patterns raise the odds without deciding them: a traveller on a new phone can be
flagged, a quiet takeover can slip through, and no single threshold separates the classes.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rtml.usecases.tfd.spec import UNITS_PER_USD, RiskSignals, fraud_probability
from rtml.usecases.world import EPOCH, EventGenerator, Generated

COUNTRIES = {  # country: (currency, share of users); rates: the spec's UNITS_PER_USD
    "US": ("USD", 0.30),
    "GB": ("GBP", 0.10),
    "DE": ("EUR", 0.10),
    "FR": ("EUR", 0.08),
    "BR": ("BRL", 0.10),
    "IN": ("INR", 0.08),
    "JP": ("JPY", 0.06),
    "CA": ("CAD", 0.07),
    "AU": ("AUD", 0.05),
    "MX": ("MXN", 0.04),
    "NG": ("NGN", 0.02),
}
DEVICES = {  # device kind: [(os, browser), ...]
    "mobile": [("iOS", "Safari"), ("Android", "Chrome"), ("Android", "Samsung Internet")],
    "desktop": [
        ("Windows", "Chrome"),
        ("Windows", "Edge"),
        ("macOS", "Safari"),
        ("macOS", "Chrome"),
        ("Linux", "Firefox"),
    ],
    "tablet": [("iPadOS", "Safari"), ("Android", "Chrome")],
}
POS = ("pos_terminal", "POS", "none")
CATEGORIES = [
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
N_USERS = 3000
N_MERCHANTS = 600
RING_MERCHANTS = 6
CITIES_PER_COUNTRY = 25
BURST_WINDOW = timedelta(minutes=1)
PATTERN_RATES = {"card_testing": 0.0025, "account_takeover": 0.005, "merchant_collusion": 0.004}


@dataclass
class User:
    user_id: str
    home: str
    city: tuple[float, float, str]
    usual_usd: float
    devices: list[tuple[str, str, str]]
    favourites: list[str]
    created: datetime
    payment_method: str
    recent: deque[datetime] = field(default_factory=deque)


class TransactionGenerator(EventGenerator):
    usecase = "tfd"

    def __init__(self, seed: int = 0, start: datetime = EPOCH, events_per_second: float = 20.0):
        super().__init__(seed, start, events_per_second)
        rng = self.rng
        self.cities = {cc: [self._city(cc) for _ in range(CITIES_PER_COUNTRY)] for cc in COUNTRIES}
        self.merchants = [f"m-{i:04d}" for i in range(N_MERCHANTS)]
        self.ring = set(rng.sample(self.merchants, RING_MERCHANTS))
        self.users = [self._user(i) for i in range(N_USERS)]
        self.young_users = [u for u in self.users if (start - u.created).days < 60]
        self.bursts: list[tuple[User, int]] = []  # card-testing bursts in progress

    def _city(self, cc: str) -> tuple[float, float, str]:
        place = self.fake.local_latlng(country_code=cc)
        if place is None:
            raise ValueError(f"Faker knows no place in {cc}")
        lat, lon, name, _, _ = place
        return float(lat), float(lon), name

    def _device(self, kind: str | None = None) -> tuple[str, str, str]:
        kind = kind or self.pick({"mobile": 0.6, "desktop": 0.3, "tablet": 0.1})
        os, browser = self.rng.choice(DEVICES[kind])
        return kind, os, browser

    def _user(self, i: int) -> User:
        rng = self.rng
        home = self.pick({cc: share for cc, (_, share) in COUNTRIES.items()})
        age_days = int(rng.expovariate(1 / 700))
        return User(
            user_id=f"u-{i:05d}",
            home=home,
            city=rng.choice(self.cities[home]),
            usual_usd=math.exp(rng.gauss(3.6, 0.7)),
            devices=[self._device() for _ in range(rng.choice((1, 1, 2)))],
            favourites=rng.sample(CATEGORIES, 3),
            created=self.now - timedelta(days=age_days),
            payment_method=self.pick(
                {"credit_card": 0.5, "debit_card": 0.3, "wallet": 0.15, "bank_transfer": 0.05}
            ),
        )

    # -- one event ------------------------------------------------------------------------------
    def generate(self) -> Generated:
        rng = self.rng
        if self.bursts and rng.random() < 0.3:
            return self._card_test_continue()
        r = rng.random()
        edges = list(PATTERN_RATES.items())
        if r < edges[0][1]:
            return self._card_test_start()
        if r < edges[0][1] + edges[1][1]:
            return self._account_takeover()
        if r < edges[0][1] + edges[1][1] + edges[2][1]:
            return self._collusion()
        return self._normal(rng.choice(self.users))

    def _normal(self, u: User) -> Generated:
        rng = self.rng
        away = rng.random() < 0.04
        country = rng.choice([c for c in COUNTRIES if c != u.home]) if away else u.home
        city = rng.choice(self.cities[country]) if away else u.city
        kind = self.pick({"online": 0.55, "in_store": 0.3, "subscription": 0.1, "transfer": 0.05})
        if kind == "in_store":
            device = POS
        elif rng.random() < 0.05:
            device = self._device()
        else:
            device = rng.choice(u.devices)
        category = rng.choice(u.favourites) if rng.random() < 0.8 else rng.choice(CATEGORIES)
        merchant = rng.choice(self.merchants)
        return self._emit(
            u,
            "normal",
            country,
            city,
            device,
            kind,
            category,
            merchant,
            usd=u.usual_usd * math.exp(rng.gauss(0, 0.6)),
            cvv=kind == "in_store" or rng.random() < 0.97,
            billing=rng.random() < (0.85 if away else 0.97),
        )

    def _card_test_start(self) -> Generated:
        pool = self.young_users if self.young_users and self.rng.random() < 0.7 else self.users
        u = self.rng.choice(pool)
        self.bursts.append((u, self.rng.randint(3, 8)))
        return self._card_test_continue(len(self.bursts) - 1)

    def _card_test_continue(self, index: int | None = None) -> Generated:
        rng = self.rng
        i = rng.randrange(len(self.bursts)) if index is None else index
        u, left = self.bursts[i]
        if left <= 1:
            self.bursts.pop(i)
        else:
            self.bursts[i] = (u, left - 1)
        device = self._device("mobile") if rng.random() < 0.3 else rng.choice(u.devices)
        return self._emit(
            u,
            "card_testing",
            u.home,
            u.city,
            device,
            "online",
            rng.choice(["digital_goods", "gift_cards"]),
            rng.choice(self.merchants),
            usd=rng.uniform(0.5, 5.0),
            cvv=rng.random() < 0.4,
            billing=rng.random() < 0.5,
        )

    def _account_takeover(self) -> Generated:
        rng = self.rng
        u = rng.choice(self.users)
        away = rng.random() < 0.75
        country = rng.choice([c for c in COUNTRIES if c != u.home]) if away else u.home
        return self._emit(
            u,
            "account_takeover",
            country,
            rng.choice(self.cities[country]),
            self._device("desktop") if rng.random() < 0.85 else rng.choice(u.devices),
            rng.choice(["online", "transfer"]),
            rng.choice(["electronics", "gift_cards", "travel"]),
            rng.choice(self.merchants),
            usd=u.usual_usd * math.exp(rng.gauss(1.8, 0.6)),
            cvv=rng.random() < 0.75,
            billing=rng.random() < 0.4,
        )

    def _collusion(self) -> Generated:
        rng = self.rng
        u = rng.choice(self.users)
        return self._emit(
            u,
            "merchant_collusion",
            u.home,
            u.city,
            rng.choice(u.devices),
            "online",
            rng.choice(["electronics", "gift_cards"]),
            rng.choice(sorted(self.ring)),
            usd=50.0 * rng.randint(2, 20),
            cvv=True,
            billing=rng.random() < 0.8,
        )

    def _emit(
        self,
        u: User,
        pattern: str,
        country: str,
        city: tuple[float, float, str],
        device: tuple[str, str, str],
        kind: str,
        category: str,
        merchant: str,
        usd: float,
        cvv: bool,
        billing: bool,
    ) -> Generated:
        now = self.now
        while u.recent and now - u.recent[0] > BURST_WINDOW:
            u.recent.popleft()
        account_age = (now - u.created).days
        signals = RiskSignals(
            new_device=device != POS and device not in u.devices,
            away_from_home=country != u.home,
            amount_ratio=max(usd, 0.01) / u.usual_usd,
            recent_transactions=len(u.recent),
            ring_merchant=merchant in self.ring,
            cvv_provided=cvv,
            billing_address_match=billing,
            account_age_days=account_age,
        )
        u.recent.append(now)
        p = fraud_probability(signals)
        currency, _ = COUNTRIES[country]
        per_usd = UNITS_PER_USD[currency]
        lat, lon, city_name = city
        event = {
            "transaction_id": self.new_id("tx"),
            "user_id": u.user_id,
            "timestamp": self.timestamp(),
            "amount": round(max(usd * per_usd, 0.01), 2),
            "currency": currency,
            "merchant_id": merchant,
            "product_category": category,
            "transaction_type": kind,
            "payment_method": u.payment_method,
            "country": country,
            "city": city_name,
            "latitude": lat,
            "longitude": lon,
            "device_type": device[0],
            "device_os": device[1],
            "device_browser": device[2],
            "account_age_days": account_age,
            "cvv_provided": cvv,
            "billing_address_match": billing,
            "is_fraud": self.rng.random() < p,
        }
        return Generated(u.user_id, event, {"fraud_probability": p, "pattern": pattern})
