"""Hardening tests reuse the storage tests' `lab` fixture (an inventory for the `ontap_sim` fixture)."""

from __future__ import annotations

from tests.ontap.conftest import lab  # noqa: F401 - re-exported fixture
