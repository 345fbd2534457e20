"""The embedding-driver engine: interpreters made and ended by wsgi_driver.c, without Apache."""

from harness.engines.driver.engine import DriverEngine, create, refusal

__all__ = ["DriverEngine", "create", "refusal"]
