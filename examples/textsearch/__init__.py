"""Text search on WordNet glosses: dense (MiniLM), BM25 and hybrid (RRF) retrieval."""
