"""Image similarity search on scikit-learn's digits; ``python -m examples.images``."""
