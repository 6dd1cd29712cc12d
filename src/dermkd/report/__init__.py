"""Reports: comparison tables of finished runs (terminal, CSV, Markdown)."""
