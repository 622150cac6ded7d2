"""Layer 6, compare: read a spec, plan its runs and phases, and drive them (``clr-rl compare``): the
setup phase, the arms (look by look for a ``[sequential]`` batch, judged by the analysis layer's scoring),
tradeoff curves."""
