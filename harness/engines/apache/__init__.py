"""The Apache engine: mod_wsgi-express servers."""

from harness.engines.apache.engine import ApacheEngine, create, refusal

__all__ = ["ApacheEngine", "create", "refusal"]
