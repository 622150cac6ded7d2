"""Layer 6, analysis: read a batch back, score it, and write the report, figures and TensorBoard views."""
