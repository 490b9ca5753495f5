"""Estimated time of arrival: how many seconds will a delivery take? (regression)

The world's rule: travel time is road distance over an effective speed, plus handling and any
incident's delay, times a multiplicative noise with median one. Road distance (a per-trip detour
factor over the straight line), traffic (from the *local* hour and weekday), the weather's
slowdown and the driver's skill are latent: the event carries the straight-line distance, the
timestamp, the weather label, the rating and the vehicle, never the factors. The oracle knows the
factors and predicts the median, which is what minimises the absolute error.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from rtml.entity import Entities, EntityFeature
from rtml.features import Feature, categorical, day_of_week, flag, hour_of_day, numeric
from rtml.tasks import Regression
from rtml.usecases.base import EventModel, UseCase

#: São Paulo: a real city box, and a fixed UTC offset (no daylight saving since 2019), so local
#: time is the same expression in Python and in SQL.
CITY = "São Paulo"
CITY_BOX = {"lat": (-23.75, -23.45), "lon": (-46.85, -46.45)}
UTC_OFFSET_HOURS = -3

VehicleType = Literal["bicycle", "motorcycle", "car", "van"]
Weather = Literal["clear", "cloudy", "rain", "storm", "fog"]


#: A trip's pace: log seconds per km (plus one km for handling), a label the driver's record
#: averages once each trip has ended.
LOG_PACE = Feature(
    "log_pace",
    "numeric",
    # floored: a valid time may be so small that the quotient underflows to zero
    lambda e: math.log(max(float(e["travel_seconds"]) / (float(e["distance_km"]) + 1.0), 1e-12)),
    "ln(greatest(travel_seconds / (distance_km + 1.0), 1e-12))",
    "log seconds per km of a finished trip",
)


class Delivery(EventModel):
    trip_id: str = Field(min_length=1, max_length=64)
    driver_id: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime = Field(description="pickup time")
    origin_lat: float = Field(ge=-90, le=90)
    origin_lon: float = Field(ge=-180, le=180)
    dest_lat: float = Field(ge=-90, le=90)
    dest_lon: float = Field(ge=-180, le=180)
    distance_km: float = Field(ge=0, le=500, description="straight line, origin to destination")
    vehicle_type: VehicleType
    weather: Weather
    driver_rating: float = Field(ge=1, le=5)
    package_weight_kg: float = Field(gt=0, le=1000)
    incident_reported: bool = Field(description="an accident or closure reported on the route")
    travel_seconds: float = Field(gt=0, le=86_400)


class TravelTruth(BaseModel):
    expected_seconds: float = Field(gt=0)
    reachable_seconds: float = Field(gt=0, description="the route's hidden draws at their median")


def _oracle(truth: BaseModel) -> float:
    assert isinstance(truth, TravelTruth)
    return truth.expected_seconds


def _ceiling(truth: BaseModel) -> float:
    assert isinstance(truth, TravelTruth)
    return truth.reachable_seconds


SPEC = UseCase(
    name="eta",
    title="Estimated time of arrival",
    task=Regression(),
    event=Delivery,
    truth=TravelTruth,
    key="driver_id",
    target="travel_seconds",
    features=(
        numeric("distance_km"),
        numeric("origin_lat"),
        numeric("origin_lon"),
        numeric("dest_lat"),
        numeric("dest_lon"),
        categorical("vehicle_type"),
        categorical("weather"),
        numeric("driver_rating"),
        numeric("package_weight_kg"),
        flag("incident_reported"),
        hour_of_day(utc_offset_hours=UTC_OFFSET_HOURS, doc="local hour: rush hours are local"),
        day_of_week(utc_offset_hours=UTC_OFFSET_HOURS, doc="local weekday, Monday = 0"),
    ),
    entities=Entities(
        id_field="trip_id",
        label_delay="travel_seconds",  # a trip's time is known when it ends
        features=(
            EntityFeature("driver_trips", "count", doc="the driver's earlier trips"),
            EntityFeature(
                "driver_pace",
                "mean",
                (LOG_PACE,),
                label=True,
                fill=math.log(400.0),
                doc="the driver's usual pace over ended trips: skill and vehicle",
            ),
            EntityFeature(
                "driver_pace_spread",
                "std",
                (LOG_PACE,),
                label=True,
                doc="how steady the driver's pace is",
            ),
            EntityFeature(
                "driver_since_last_s",
                "since_last",
                fill=30 * 86_400.0,
                doc="seconds since the driver's previous pickup",
            ),
        ),
        # deliveries end within hours; the newest few hundred trips say enough of a driver
        horizon=timedelta(days=7),
        history=200,
    ),
    oracle=_oracle,
    ceiling=_ceiling,
    online_model={"n_models": 10, "seed": 42},
)
