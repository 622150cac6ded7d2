"""Layer 3, execution: planned runs -> results, on a local process pool or Ray; estimates; summaries."""
