"""The python kernel's side of the interpreter: code that runs *inside* the ipykernel process.

`python -m corral.interpreter.python_kernel -f CONNECTION_FILE [ipykernel options]` is the
command of `kernels/python/kernel.json` (`__main__`). It registers the E2B display
formatters (`display`) and provides the env_vars helpers the server calls (`env`). Nothing
here imports the server's modules, and nothing heavy is imported at kernel start: pandas,
matplotlib and e2b_charts only when a DataFrame or a Figure is displayed.
"""

__all__: list[str] = []
