"""Audio similarity search on words spoken by espeak-ng; ``python -m examples.audio``."""
