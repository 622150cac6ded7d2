"""Layer 5, compare: read a spec, plan its runs and phases, and drive them (``clr-rl compare``)."""
