"""The batch side of the core: feature frames, training, evaluation (no Ray, no HTTP)."""
