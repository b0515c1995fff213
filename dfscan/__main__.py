"""`python -m dfscan ...`: the command line where no console script is installed (the GPU machine)."""

from dfscan.cli import app

app(prog_name="dfscan")
