"""Application examples: each subpackage runs with ``python -m examples.<name>`` from the
repository root (see ``examples/README.md``)."""
