"""The day's UV index at a clinic: the forecast when it answers, a clear-sky estimate otherwise."""

from __future__ import annotations

import json
import math
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command

from accounts.models import Clinic
from clinics.uv import band_of, clinic_uv
from tests.factories import ClinicFactory

NAIROBI = (-1.2921, 36.8219)
MAPUTO = (-25.9692, 32.5732)


@pytest.fixture
def nairobi(clinic_a):
    clinic_a.latitude, clinic_a.longitude = NAIROBI
    clinic_a.save()
    return clinic_a


class FakeOpenMeteo:
    """A local HTTP server answering /v1/forecast like Open-Meteo, for Nairobi (UTC+3)."""

    def __init__(self, *, uv_now: float = 6.2, uv_max: float = 11.4, body: bytes | None = None):
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                fake.requests.append({"path": url.path, **{k: v[0] for k, v in parse_qs(url.query).items()}})
                payload = body if body is not None else json.dumps(fake.forecast(uv_now, uv_max)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def forecast(uv_now: float, uv_max: float) -> dict:
        offset = timedelta(hours=3)
        local_now = datetime.now(UTC) + offset
        day = local_now.date()
        times = [f"{day.isoformat()}T{hour:02d}:00" for hour in range(24)]
        values = [1.0] * 24
        values[local_now.hour] = uv_now
        return {
            "latitude": NAIROBI[0],
            "longitude": NAIROBI[1],
            "utc_offset_seconds": int(offset.total_seconds()),
            "timezone": "Africa/Nairobi",
            "hourly_units": {"time": "iso8601", "uv_index": ""},
            "hourly": {"time": times, "uv_index": values},
            "daily": {"time": [day.isoformat()], "uv_index_max": [uv_max]},
        }

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


def test_the_forecast_is_used_when_it_answers_and_kept_for_the_hour(nairobi, staff, client_for, settings):
    with FakeOpenMeteo(uv_now=6.2, uv_max=11.4) as fake:
        settings.SKINPORTAL_UV_FORECAST_URL = fake.url
        client = client_for(staff)
        first = client.get(f"/api/v1/clinics/{nairobi.pk}/uv/")
        second = client.get(f"/api/v1/clinics/{nairobi.pk}/uv/")

    assert first.status_code == 200, first.content
    body = first.json()
    assert body["source"] == "forecast"
    assert (body["uv_index_now"], body["uv_index_max_today"]) == (6.2, 11.4)
    assert body["band"] == "extreme" and body["band_label"] == "Extreme"
    assert "Avoid being outside during the midday hours" in body["advice"]
    assert set(body) == {
        "uv_index_now",
        "uv_index_max_today",
        "band",
        "band_label",
        "advice",
        "source",
        "computed_at",
    }
    assert second.json()["source"] == "forecast"
    assert len(fake.requests) == 1  # the second answer came from the cache
    request = fake.requests[0]
    assert request["path"] == "/v1/forecast"
    assert (float(request["latitude"]), float(request["longitude"])) == NAIROBI
    assert request["hourly"] == "uv_index" and request["daily"] == "uv_index_max"


@pytest.mark.parametrize("body", [b"<html>busy</html>", b'{"hourly": {}}', b'{"hourly": {"time": ["x"]}}'])
def test_a_forecast_that_makes_no_sense_gives_the_estimate(nairobi, staff, client_for, settings, body):
    with FakeOpenMeteo(body=body) as fake:
        settings.SKINPORTAL_UV_FORECAST_URL = fake.url
        response = client_for(staff).get(f"/api/v1/clinics/{nairobi.pk}/uv/")
    assert response.status_code == 200
    assert response.json()["source"] == "clear-sky-estimate"


def _spencer(when: datetime) -> tuple[float, float]:
    """Declination (degrees) and equation of time (minutes): Spencer's (1971) Fourier series,
    independent of the NOAA equations the portal uses."""
    g = 2 * math.pi * (when.timetuple().tm_yday - 1) / 365
    declination = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    equation_of_time = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    return math.degrees(declination), equation_of_time


def _published_clear_sky_noon_uv(latitude: float, when: datetime) -> float:
    """Madronich's UVI = 12.5 cos(z)^2.42 (300 DU) at solar noon, z = |latitude - declination|."""
    declination, _eot = _spencer(when)
    return 12.5 * math.cos(math.radians(abs(latitude - declination))) ** 2.42


def _solar_noon_utc(longitude: float, day: datetime) -> datetime:
    _declination, equation_of_time = _spencer(day)
    return day.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(minutes=4 * longitude + equation_of_time)


@pytest.mark.parametrize("place", [NAIROBI, MAPUTO, (51.5, -0.12)])
@pytest.mark.parametrize(
    "day", [datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)]
)
def test_with_the_forecast_down_the_estimate_matches_the_clear_sky_formula_at_solar_noon(place, day, settings, db):
    settings.SKINPORTAL_UV_FORECAST_URL = _closed_port_url()
    clinic = ClinicFactory(name="Somewhere", latitude=place[0], longitude=place[1])
    noon = _solar_noon_utc(place[1], day)

    reading = clinic_uv(clinic, when=noon)

    expected = _published_clear_sky_noon_uv(place[0], noon)
    assert reading.source == "clear-sky-estimate"
    assert reading.uv_index_now == pytest.approx(expected, rel=0.05)
    assert reading.uv_index_max_today == pytest.approx(expected, rel=0.05)
    assert reading.band == band_of(reading.uv_index_max_today)[0]


def test_the_estimate_is_zero_at_night(nairobi, settings):
    settings.SKINPORTAL_UV_FORECAST_URL = _closed_port_url()
    midnight_in_nairobi = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # 00:00 EAT

    reading = clinic_uv(nairobi, when=midnight_in_nairobi)

    assert reading.uv_index_now == 0
    assert reading.uv_index_max_today > 8  # the day's maximum is still the midday one


def test_without_a_network_setting_the_estimate_is_labelled(nairobi, staff, client_for):
    body = client_for(staff).get(f"/api/v1/clinics/{nairobi.pk}/uv/").json()
    assert body["source"] == "clear-sky-estimate"
    assert 0 <= body["uv_index_now"] <= body["uv_index_max_today"] <= 13


@pytest.mark.parametrize(
    ("uv", "band"),
    [
        (0, "low"),
        (2.4, "low"),
        (2.5, "moderate"),
        (5.4, "moderate"),
        (6, "high"),
        (7.4, "high"),
        (7.5, "very_high"),
        (10.4, "very_high"),
        (10.5, "extreme"),
        (16, "extreme"),
    ],
)
def test_who_bands(uv, band):
    assert band_of(uv)[0] == band


def test_another_clinics_uv_is_404_and_the_list_is_the_users_clinics(nairobi, clinic_b, staff, other_staff, client_for):
    clinic_b.latitude, clinic_b.longitude = MAPUTO
    clinic_b.save()

    assert client_for(other_staff).get(f"/api/v1/clinics/{nairobi.pk}/uv/").status_code == 404
    assert client_for(staff).get(f"/api/v1/clinics/{clinic_b.pk}/uv/").status_code == 404
    listed = client_for(staff).get("/api/v1/clinics/").json()
    assert listed == [{"id": nairobi.pk, "name": nairobi.name, "latitude": NAIROBI[0], "longitude": NAIROBI[1]}]


def test_a_clinic_without_a_location_has_no_uv(clinic_a, staff, client_for):
    assert client_for(staff).get(f"/api/v1/clinics/{clinic_a.pk}/uv/").status_code == 404


def test_the_dashboard_shows_the_days_uv_advice(nairobi, staff, web_client, settings):
    with FakeOpenMeteo(uv_now=4.0, uv_max=9.0) as fake:
        settings.SKINPORTAL_UV_FORECAST_URL = fake.url
        page = web_client(staff).get("/").content.decode()
    assert "UV index today at Clinic A" in page
    assert "Very high" in page and "Extra protection needed" in page
    assert "Forecast by Open-Meteo." in page


def test_the_dashboard_still_opens_with_the_forecast_down(nairobi, staff, web_client, settings):
    settings.SKINPORTAL_UV_FORECAST_URL = _closed_port_url()
    response = web_client(staff).get("/")
    assert response.status_code == 200
    assert "Estimate for a clear sky" in response.content.decode()


def test_seed_demo_places_the_clinics_in_nairobi_and_maputo(db):
    call_command("seed_demo", "--password", "demo-password-for-test")
    located = list(Clinic.objects.order_by("name").values_list("name", "latitude", "longitude"))
    assert located == [("Demo Clinic", *NAIROBI), ("Second Clinic", *MAPUTO)]
