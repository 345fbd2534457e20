"""Running: the cycle loop and its judge, one run (runner), many runs side by side (session), and what builds
on sessions (plans, matrices, bisect, isolate's trials)."""
