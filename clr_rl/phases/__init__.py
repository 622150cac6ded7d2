"""Layer 4, phases of a batch (tune, LR range tests, tradeoff curves): each planned from above and run here,
never calling up into ``compare``."""
