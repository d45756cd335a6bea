"""`python -m corral.interpreter`: the code-interpreter server (see `cli`)."""

from corral.interpreter.cli import main

main()
