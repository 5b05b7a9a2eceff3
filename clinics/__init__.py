"""Clinic-level information beside the clinical records: the day's UV index (uv.py) and its API."""
