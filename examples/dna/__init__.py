"""DNA sequence classification by nearest neighbours on k-mer count vectors.
``python -m examples.dna`` runs it."""
