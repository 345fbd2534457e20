"""Benchmarks of the harness against real servers, every figure from one invocation (python -m bench).

One module per figure family, each a ``measure(bench) -> Section``; ``__main__`` runs the chosen ones
and writes BENCHMARKS.md. The harness runs as a user runs it (a subprocess of ``python -m harness``),
and what it wrote is read back as its own typed records.
"""
