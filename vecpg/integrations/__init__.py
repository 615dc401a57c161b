"""Integrations of vecpg with other frameworks, one module each, each importing its framework
only when imported itself: ``from vecpg.integrations.langchain import VecpgVectorStore``
(needs ``langchain-core``)."""
