"""Layer 5, analysis: read a batch back, score it, and write the report, figures and TensorBoard views
(driven by ``compare`` for a sequential batch's looks, and by ``clr-rl report`` / ``clr-rl tensorboard``)."""
