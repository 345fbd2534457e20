"""The unit tier: no Apache, no interpreter but our own; the engine boundary is a FakeEngine."""

from tests.unit.fakes import world

__all__ = ["world"]
