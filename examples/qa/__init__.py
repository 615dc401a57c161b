"""Text search and a QA bot: questions embedded with all-MiniLM-L6-v2 (in numpy), answers
in ordinary tables, one SQL join per new question. ``python -m examples.qa`` runs it."""
