import typer


def import_clients(ctx: typer.Context) -> None:
    """(being written)"""
