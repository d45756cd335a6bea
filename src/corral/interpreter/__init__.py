"""Corral's code-interpreter server: port 49999 inside a `code-interpreter-v1` sandbox.

It speaks the HTTP contract of the `e2b-code-interpreter` SDK (shared/e2b-protocol.md §8):
`POST /execute` streams one JSON object per line while a Jupyter kernel runs the code, and
`/contexts` manages the kernels. Started as `python -m corral.interpreter --port 49999`.

This package runs inside the sandbox with only `corral/__init__.py` beside it: it imports
nothing else from `corral`. Importing it is cheap (no submodule is loaded here), because the
python kernel's launcher (`corral.interpreter.python_kernel`) lives below it too.
"""

__all__: list[str] = []
