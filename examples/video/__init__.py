"""Video similarity search: which clip, and when, a distorted screenshot comes from;
``python -m examples.video``."""
