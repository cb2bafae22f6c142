"""Prints the versions of the dependencies it runs with: uv.lock's, not the newest its
pyproject.toml ranges allow."""

from importlib.metadata import version

import click
import itsdangerous

signer = itsdangerous.Signer("corpus")
click.echo(f"click {version('click')}, itsdangerous {version('itsdangerous')}, signed {signer.sign('binpack').decode()}")
