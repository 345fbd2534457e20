"""Objects shared by every request (``app_globals`` / ``g`` in templates)."""
from beaker.cache import CacheManager
from beaker.util import parse_cache_config_options


class Globals(object):
    """Created once per application in config/environment.py."""

    def __init__(self, config):
        # beaker.cache.type = memory in development.ini: nothing goes to disk.
        self.cache = CacheManager(**parse_cache_config_options(config))
