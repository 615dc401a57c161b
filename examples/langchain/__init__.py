"""A LangChain retriever over WordNet glosses stored in vecpg (see README.md)."""
