"""The training engine: recipes, config, one training loop, evaluation, metrics, CV."""
