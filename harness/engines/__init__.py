"""Engines: what runs the app and reloads it. One Engine protocol (``base.py``), two implementations:
an Apache server made by mod_wsgi-express (``apache/``) and the embedding driver (``driver/``)."""

from __future__ import annotations

from harness.engines import apache, driver
from harness.engines.base import Engine, EngineSetup


def refusal(setup: EngineSetup) -> str | None:
    """Why the engine cannot run this mechanism and layout in this cell, said before anything starts."""
    if setup.mechanism.driver:
        return driver.refusal(setup)
    return apache.refusal(setup)


def create(setup: EngineSetup) -> Engine:
    if setup.mechanism.driver:
        return driver.create(setup)
    return apache.create(setup)
