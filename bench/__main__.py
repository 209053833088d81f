import typer

from bench.run import main

typer.run(main)
