"""Apache configuration templates: package data of the harness (read with importlib.resources)."""
