"""Today's UV index at a clinic, its WHO band and the WHO sun-protection advice.

Source: Open-Meteo's free forecast (SKINPORTAL_UV_FORECAST_URL) when it answers within
SKINPORTAL_UV_FORECAST_TIMEOUT seconds, kept per clinic for an hour; otherwise, and always
without a network, a clear-sky estimate: the sun's zenith angle from NOAA's solar position
equations (Meeus, as in NOAA's solar calculator) and Madronich's clear-sky formula
UVI = 12.5 x cos(zenith)^2.42 at 300 DU of ozone (Madronich, "Analytic formula for the
clear-sky UV index", Photochem. Photobiol. 83, 2007). An estimate is labelled as one;
a forecast that is down is never an error.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

FORECAST = "forecast"
ESTIMATE = "clear-sky-estimate"
FORECAST_KEPT = timedelta(hours=1)
# After a failed forecast, pages use the estimate for this long before asking again, so a
# forecast service that is down does not slow every dashboard by the timeout.
FORECAST_RETRY_AFTER = timedelta(minutes=5)

# WHO, "Global Solar UV Index: a practical guide" (2002): bands of the rounded index, and
# the advice for each, worded for patients.
BANDS = (
    (2, "low", _("Low")),
    (5, "moderate", _("Moderate")),
    (7, "high", _("High")),
    (10, "very_high", _("Very high")),
    (math.inf, "extreme", _("Extreme")),
)
ADVICE = {
    "low": _("No protection needed. You can safely stay outside."),
    "moderate": _(
        "Protection needed. Seek shade during the midday hours. Wear a shirt with sleeves, "
        "put on sunscreen and wear a hat."
    ),
    "high": _(
        "Protection needed. Seek shade during the midday hours. Wear a shirt with sleeves, "
        "put on sunscreen and wear a hat."
    ),
    "very_high": _(
        "Extra protection needed. Avoid being outside during the midday hours and stay in the "
        "shade. A shirt with sleeves, sunscreen and a hat are a must."
    ),
    "extreme": _(
        "Extra protection needed. Avoid being outside during the midday hours and stay in the "
        "shade. A shirt with sleeves, sunscreen and a hat are a must."
    ),
}


@dataclass(frozen=True)
class UVReading:
    uv_index_now: float
    uv_index_max_today: float
    band: str
    band_label: str
    advice: str
    source: str
    computed_at: datetime

    @property
    def is_estimate(self) -> bool:
        return self.source == ESTIMATE

    def as_dict(self) -> dict:
        return asdict(self)


def band_of(uv_index: float) -> tuple[str, str]:
    """The WHO band (code, label) of a UV index; the index is rounded as WHO reports it."""
    rounded = math.floor(max(0.0, uv_index) + 0.5)
    for upper, code, label in BANDS:
        if rounded <= upper:
            return code, str(label)
    raise AssertionError("unreachable")  # pragma: no cover


# --- The clear-sky estimate ------------------------------------------------------------------
def _sun(when: datetime) -> tuple[float, float]:
    """(declination in degrees, equation of time in minutes) at `when`, NOAA's equations."""
    julian_day = when.timestamp() / 86400 + 2440587.5
    t = (julian_day - 2451545) / 36525  # Julian centuries since J2000.0
    mean_long = (280.46646 + t * (36000.76983 + t * 0.0003032)) % 360
    mean_anom = math.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    ecc = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    centre = (
        math.sin(mean_anom) * (1.914602 - t * (0.004817 + 0.000014 * t))
        + math.sin(2 * mean_anom) * (0.019993 - 0.000101 * t)
        + math.sin(3 * mean_anom) * 0.000289
    )
    omega = math.radians(125.04 - 1934.136 * t)
    apparent_long = math.radians(mean_long + centre - 0.00569 - 0.00478 * math.sin(omega))
    mean_obliquity = 23 + (26 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60) / 60
    obliquity = math.radians(mean_obliquity + 0.00256 * math.cos(omega))
    declination = math.degrees(math.asin(math.sin(obliquity) * math.sin(apparent_long)))
    y = math.tan(obliquity / 2) ** 2
    l0 = math.radians(mean_long)
    equation_of_time = 4 * math.degrees(
        y * math.sin(2 * l0)
        - 2 * ecc * math.sin(mean_anom)
        + 4 * ecc * y * math.sin(mean_anom) * math.cos(2 * l0)
        - 0.5 * y * y * math.sin(4 * l0)
        - 1.25 * ecc * ecc * math.sin(2 * mean_anom)
    )
    return declination, equation_of_time


def solar_zenith(latitude: float, longitude: float, when: datetime) -> float:
    """The sun's zenith angle in degrees (no refraction) at a place and an aware datetime."""
    when = when.astimezone(UTC)
    declination, equation_of_time = _sun(when)
    minutes = when.hour * 60 + when.minute + when.second / 60 + when.microsecond / 60e6
    true_solar_time = (minutes + equation_of_time + 4 * longitude) % 1440
    hour_angle = math.radians(true_solar_time / 4 - 180)
    lat, dec = math.radians(latitude), math.radians(declination)
    cos_zenith = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(hour_angle)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def solar_noon(longitude: float, when: datetime) -> datetime:
    """The UTC time of solar noon on the clinic's solar day containing `when`."""
    when = when.astimezone(UTC)
    local = when + timedelta(hours=longitude / 15)
    midnight = datetime(local.year, local.month, local.day, tzinfo=UTC) - timedelta(hours=longitude / 15)
    noon = midnight + timedelta(hours=12)
    for _round in range(2):  # the equation of time changes little within a day
        _declination, equation_of_time = _sun(noon)
        noon = midnight + timedelta(minutes=720 - equation_of_time)
    return noon


def clear_sky_uv_index(zenith_degrees: float) -> float:
    """Madronich's clear-sky UV index at 300 DU of ozone; 0 with the sun below the horizon."""
    if zenith_degrees >= 90:
        return 0.0
    return 12.5 * math.cos(math.radians(zenith_degrees)) ** 2.42


def clear_sky_estimate(latitude: float, longitude: float, when: datetime) -> tuple[float, float]:
    """(UV index now, today's maximum) under a clear sky."""
    now = clear_sky_uv_index(solar_zenith(latitude, longitude, when))
    peak = clear_sky_uv_index(solar_zenith(latitude, longitude, solar_noon(longitude, when)))
    return now, max(now, peak)


# --- The forecast ----------------------------------------------------------------------------
class ForecastUnavailable(Exception):
    pass


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ForecastUnavailable(f"not a UV index: {value!r}")
    if not 0 <= value <= 30:
        raise ForecastUnavailable(f"UV index out of range: {value!r}")
    return float(value)


def forecast_fetch(latitude: float, longitude: float, *, base_url: str, timeout: float) -> dict:
    """Today's hourly and maximum UV index from Open-Meteo, as {"hours": {iso UTC hour: uv}, "max": uv}."""
    query = urllib.parse.urlencode(
        {
            "latitude": f"{latitude:.4f}",
            "longitude": f"{longitude:.4f}",
            "hourly": "uv_index",
            "daily": "uv_index_max",
            "timezone": "auto",
            "forecast_days": 1,
        }
    )
    url = f"{base_url.rstrip('/')}/v1/forecast?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (URL from settings)
            data = json.loads(response.read(1_000_000))
        offset = timedelta(seconds=int(data.get("utc_offset_seconds", 0)))
        hourly = data["hourly"]
        hours = {}
        for stamp, value in zip(hourly["time"], hourly["uv_index"], strict=True):
            if value is None:
                continue
            local = datetime.fromisoformat(stamp)
            hours[(local - offset).replace(tzinfo=UTC).strftime("%Y-%m-%dT%H")] = _number(value)
        peak = _number(data["daily"]["uv_index_max"][0])
    except ForecastUnavailable:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, urllib.error.URLError) as exc:
        raise ForecastUnavailable(str(exc)) from exc
    if not hours:
        raise ForecastUnavailable("no hourly UV index")
    return {"hours": hours, "max": peak}


def _forecast_for(clinic, when: datetime) -> tuple[float, float] | None:
    base_url = getattr(settings, "SKINPORTAL_UV_FORECAST_URL", "")
    if not base_url:
        return None
    key = f"clinics:uv-forecast:{clinic.pk}:{clinic.latitude:.4f}:{clinic.longitude:.4f}"
    hour = when.astimezone(UTC).strftime("%Y-%m-%dT%H")
    kept = cache.get(key)
    if kept == "down":
        return None
    if not kept or hour not in kept["hours"]:
        try:
            kept = forecast_fetch(
                clinic.latitude,
                clinic.longitude,
                base_url=base_url,
                timeout=settings.SKINPORTAL_UV_FORECAST_TIMEOUT,
            )
        except ForecastUnavailable as exc:
            logger.warning("UV forecast unavailable for clinic %s, using the estimate: %s", clinic.pk, exc)
            cache.set(key, "down", FORECAST_RETRY_AFTER.total_seconds())
            return None
        cache.set(key, kept, FORECAST_KEPT.total_seconds())
        if hour not in kept["hours"]:
            return None
    now = kept["hours"][hour]
    return now, max(now, kept["max"])


def clinic_uv(clinic, *, when: datetime | None = None) -> UVReading | None:
    """Today's UV index at the clinic; None when the clinic has no location."""
    if clinic.latitude is None or clinic.longitude is None:
        return None
    when = when or timezone.now()
    forecast = _forecast_for(clinic, when)
    if forecast is not None:
        now, peak, source = *forecast, FORECAST
    else:
        now, peak = clear_sky_estimate(clinic.latitude, clinic.longitude, when)
        source = ESTIMATE
    band, label = band_of(peak)
    return UVReading(
        uv_index_now=round(now, 1),
        uv_index_max_today=round(peak, 1),
        band=band,
        band_label=label,
        advice=str(ADVICE[band]),
        source=source,
        computed_at=when,
    )


def dashboard_uv_readings(*, user, limit: int = 3) -> list[tuple[object, UVReading]]:
    """(clinic, reading) for the dashboard of clinic staff: their clinics that have a location."""
    from .selectors import clinic_list_for

    if not getattr(user, "is_clinic_staff", False):
        return []
    clinics = clinic_list_for(user=user).exclude(latitude=None).exclude(longitude=None)[:limit]
    return [(clinic, reading) for clinic in clinics if (reading := clinic_uv(clinic)) is not None]
