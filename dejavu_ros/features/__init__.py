"""Features stage: the DVF network, its input convention, checkpoints and inference."""
