"""The `dermkd` command line (typer)."""
