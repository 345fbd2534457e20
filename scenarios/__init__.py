"""The shipped scenarios: package data of the harness (read with importlib.resources)."""
