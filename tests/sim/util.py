"""Helpers for the simulator tests: plain HTTPS calls and error decoding."""

from __future__ import annotations

from typing import Any

import requests


class Raw:
    """Plain HTTPS calls (for status codes, headers and bodies the SDK hides)."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.session = requests.Session()
        self.session.auth = (sim.username, sim.password)
        self.session.verify = sim.ca_file
        self.session.trust_env = False

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.sim.url + path, timeout=10, **kwargs)


def error_of(response: requests.Response) -> tuple[int, str, str]:
    """(HTTP status, ONTAP error code, message) of an error answer."""
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]
