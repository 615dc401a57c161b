"""Molecular similarity and substructure search: RDKit fingerprints in vecpg.

``python -m examples.molecules`` runs the demo; :mod:`.chem` holds the RDKit side and
:mod:`.store` the vecpg side.
"""
