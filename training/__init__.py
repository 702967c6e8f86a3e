"""Training: datasets, the feature cache, the training loop, evaluation and model versions."""
