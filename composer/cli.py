"""Command-line interface (placeholder until the typer app lands)."""


def main() -> None:
    """Run the composer CLI."""
    raise SystemExit("composer: not yet implemented")
