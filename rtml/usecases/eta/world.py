"""Deliveries across São Paulo with latent traffic, detours, weather and driver skill.

Emitted: where from and to, the straight-line distance, the pickup time, the vehicle, the
weather label, the driver's rating, the package weight, whether an incident was reported, and
the travel time. Latent (never emitted): the detour factor of the route, the traffic factor of the
local hour and weekday, the weather's slowdown, the driver's skill and an incident's delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from rtml.entity import haversine_km
from rtml.usecases.eta.spec import CITY_BOX, UTC_OFFSET_HOURS
from rtml.usecases.world import EPOCH, EventGenerator, Generated

N_DRIVERS = 400
SPEED_KMH = {"bicycle": 15.0, "motorcycle": 36.0, "car": 30.0, "van": 26.0}
TRAFFIC_SENSITIVITY = {"bicycle": 0.2, "motorcycle": 0.5, "car": 1.0, "van": 1.15}
HANDLING_S = {"bicycle": 90.0, "motorcycle": 120.0, "car": 200.0, "van": 320.0}
WEATHER = {"clear": 0.45, "cloudy": 0.25, "rain": 0.18, "storm": 0.05, "fog": 0.07}
WEATHER_SLOWDOWN = {"clear": 1.0, "cloudy": 1.03, "rain": 1.25, "storm": 1.6, "fog": 1.15}
NOISE_SIGMA = 0.12  # log-scale spread of the travel time around its median
DETOUR_BASE, DETOUR_MEAN_EXTRA = 1.15, 0.2  # a route's detour: base + an exponential draw
INCIDENT_DELAY_S = (300.0, 1500.0)  # an incident's delay: uniform


def traffic_factor(local_hour: int, weekday: int) -> float:
    """How much slower than free flow the city is, by local hour and weekday (Monday = 0)."""
    if weekday >= 5:
        return 1.35 if 11 <= local_hour <= 20 else 0.9
    if 7 <= local_hour <= 9:
        return 2.0
    if 17 <= local_hour <= 19:
        return 2.3
    if 10 <= local_hour <= 16:
        return 1.4
    return 0.85 if local_hour < 6 or local_hour >= 22 else 1.15


@dataclass(frozen=True)
class Driver:
    driver_id: str
    vehicle: str
    rating: float
    skill: float  # multiplies travel time: < 1 is faster


class DeliveryGenerator(EventGenerator):
    usecase = "eta"

    def __init__(self, seed: int = 0, start: datetime = EPOCH, events_per_second: float = 20.0):
        super().__init__(seed, start, events_per_second)
        self.drivers = [self._driver(i) for i in range(N_DRIVERS)]

    def _driver(self, i: int) -> Driver:
        rng = self.rng
        rating = round(min(5.0, max(1.0, rng.gauss(4.5, 0.35))), 2)
        vehicle = self.pick({"bicycle": 0.1, "motorcycle": 0.45, "car": 0.35, "van": 0.1})
        skill = math.exp(-0.2 * (rating - 4.5) + rng.gauss(0, 0.06))
        return Driver(f"d-{i:04d}", vehicle, rating, skill)

    def _point(self) -> tuple[float, float]:
        (lat0, lat1), (lon0, lon1) = CITY_BOX["lat"], CITY_BOX["lon"]
        return self.rng.uniform(lat0, lat1), self.rng.uniform(lon0, lon1)

    def generate(self) -> Generated:
        rng = self.rng
        d = rng.choice(self.drivers)
        origin = self._point()
        km_target = min(math.exp(rng.gauss(1.5, 0.6)), 30.0)  # ~4.5 km typical trip
        bearing = rng.uniform(0, 2 * math.pi)
        dest = (
            origin[0] + km_target / 111.0 * math.cos(bearing),
            origin[1] + km_target / 102.0 * math.sin(bearing),  # 1° lon ≈ 102 km at -23.5°
        )
        distance = haversine_km(*origin, *dest)
        weather = self.pick(WEATHER)
        weight = round(min(math.exp(rng.gauss(0.7, 0.9)), 300.0), 2)
        incident = rng.random() < 0.05

        local = self.now + timedelta(hours=UTC_OFFSET_HOURS)
        detour = DETOUR_BASE + rng.expovariate(1 / DETOUR_MEAN_EXTRA)
        slow = traffic_factor(local.hour, local.weekday()) ** TRAFFIC_SENSITIVITY[d.vehicle]
        slow *= WEATHER_SLOWDOWN[weather] * (
            1.3 if d.vehicle == "bicycle" and weather == "storm" else 1.0
        )
        speed = SPEED_KMH[d.vehicle]
        drive_s = distance * detour / speed * 3600.0 * slow * d.skill
        handling_s = HANDLING_S[d.vehicle] + 4.0 * weight
        delay_s = rng.uniform(*INCIDENT_DELAY_S) if incident else 0.0
        expected = drive_s + handling_s + delay_s
        # the reachable ceiling: the driver and the hour known, the route's detour and the
        # incident's delay (never in the event) at their medians
        median_detour = DETOUR_BASE + DETOUR_MEAN_EXTRA * math.log(2)
        median_delay = sum(INCIDENT_DELAY_S) / 2 if incident else 0.0
        reachable = (
            distance * median_detour / speed * 3600.0 * slow * d.skill + handling_s + median_delay
        )
        actual = min(expected * math.exp(rng.gauss(0, NOISE_SIGMA)), 86_000.0)

        event = {
            "trip_id": self.new_id("trip"),
            "driver_id": d.driver_id,
            "timestamp": self.timestamp(),
            "origin_lat": round(origin[0], 6),
            "origin_lon": round(origin[1], 6),
            "dest_lat": round(dest[0], 6),
            "dest_lon": round(dest[1], 6),
            "distance_km": round(distance, 3),
            "vehicle_type": d.vehicle,
            "weather": weather,
            "driver_rating": d.rating,
            "package_weight_kg": weight,
            "incident_reported": incident,
            "travel_seconds": round(actual, 1),
        }
        truth = {"expected_seconds": expected, "reachable_seconds": reachable}
        return Generated(d.driver_id, event, truth)
