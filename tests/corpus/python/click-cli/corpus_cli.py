"""A click command group, installed as the console script `corpus-cli`."""

from importlib.metadata import version

import click


@click.group()
@click.version_option(package_name="corpus-cli")
def cli():
    """binpack's corpus CLI."""


@cli.command()
@click.option("--name", default="world")
@click.option("--count", default=1, type=click.IntRange(1, 5))
def greet(name, count):
    """Greets NAME COUNT times."""
    for i in range(count):
        click.echo(f"{i + 1}: hello {name} (click {version('click')}, corpus-cli {version('corpus-cli')})")
