"""The interpreter server on the host, run by the `code-interpreter-v1` template's own python.

The template's layers hold a venv (`/opt/corral/python`: ipykernel, jupyter_client, pandas,
matplotlib, e2b-charts, Starlette, uvicorn) and Deno; both run on the host, so the server is
started from there with this checkout's source and driven over HTTP with httpx, as the SDK
would (protocol §8). R is not tried (it does not run on the host). Skipped when the
template was not built (`corral template build code-interpreter-v1`), or point
`CORRAL_INTERPRETER_PYTHON` (and optionally `CORRAL_INTERPRETER_DENO_DIR`) elsewhere.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent.harness import terminate  # tests/unit/agent: pytest puts tests/unit on sys.path

import corral

from .template_tools import deno_dir, interpreter_python

SRC = str(Path(corral.__file__).resolve().parent.parent)

PYTHON = interpreter_python()

pytestmark = pytest.mark.skipif(
    PYTHON is None,
    reason="template code-interpreter-v1 is not built (no venv python in its layers); "
    "run `corral template build code-interpreter-v1` or set CORRAL_INTERPRETER_PYTHON",
)


class Server:
    """A running `python -m corral.interpreter` and an HTTP client for it."""

    def __init__(self, home: str, *extra_args: str) -> None:
        self.home = home
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        path = os.environ.get("PATH", "/usr/bin:/bin")
        deno = deno_dir()
        if deno:
            path = f"{deno}:{path}"
        # HOME: bash_kernel sources ~/.bashrc; the host's may be slow or interactive.
        env = {**os.environ, "PATH": path, "HOME": home, "PYTHONPATH": SRC, "SANDBOX_WIDE": "yes"}
        assert PYTHON is not None
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [PYTHON, "-m", "corral.interpreter", "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--cwd", home, *extra_args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)

    def wait_listening(self, timeout: float = 10.0) -> float:
        """Seconds from spawn until the port accepted a connection."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return time.monotonic() - self.started_at
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.002)

    def stop(self) -> None:
        self.client.close()
        terminate(self.process)

    def execute(self, code: str, **fields: Any) -> list[dict[str, Any]]:
        """Run code; checks the framing (§8.1) and returns the lines before end_of_execution."""
        body = {"code": code, "context_id": None, "language": None, "env_vars": None}
        body.update(fields)
        response = self.client.post("/execute", json=body)
        assert response.status_code == 200, response.text
        return _parse_stream(response.text)

    def results(self, code: str, **fields: Any) -> list[dict[str, Any]]:
        return [line for line in self.execute(code, **fields) if line["type"] == "result"]

    def text(self, code: str, **fields: Any) -> str | None:
        for line in self.results(code, **fields):
            if line["is_main_result"]:
                text: str | None = line.get("text")
                return text
        return None


def _parse_stream(raw: str) -> list[dict[str, Any]]:
    assert raw.endswith("\n")
    lines = raw.split("\n")[:-1]
    assert all(lines), f"blank line in {raw!r}"
    parsed = [json.loads(line) for line in lines]
    assert parsed[-1] == {"type": "end_of_execution"}
    assert [line["type"] for line in parsed].count("end_of_execution") == 1
    return parsed[:-1]


def _only(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == kind]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(dir="/tmp") as home:
        running = Server(home)
        try:
            running.wait_listening()
            yield running
        finally:
            running.stop()


def test_first_execution_waits_for_the_kernel_and_sigterm_stops_every_kernel() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as home:
        fresh = Server(home, "--javascript-kernel", "lazy")
        try:
            listening = fresh.wait_listening()
            assert listening < 2.0
            assert fresh.text("1+1") == "2"  # sent right away: waits for the kernel
            first_result = time.monotonic() - fresh.started_at
            languages = [c["language"] for c in fresh.client.get("/contexts").json()]
            assert languages == ["python", "javascript"]
            assert len(_children(fresh.process.pid)) == 1  # Deno waits for javascript code
            if deno_dir() is not None:
                assert fresh.text("6 * 7", language="javascript") == "42"
            kernels = _children(fresh.process.pid)
        finally:
            fresh.stop()
        assert fresh.process.returncode == 0
        for pid in kernels:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    assert first_result < 5.0, f"first result after {first_result:.2f} s"


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
        return [int(child) for child in children.read().split()]


def test_default_contexts_are_python_then_javascript(server: Server) -> None:
    contexts = server.client.get("/contexts").json()
    assert [c["language"] for c in contexts[:2]] == ["python", "javascript"]
    assert all(c["cwd"] == server.home for c in contexts[:2])
    assert server.client.get("/health").text == "OK"


def test_state_persists_and_every_cell_counts(server: Server) -> None:
    first = server.execute("state_x = 41")
    count = _only(first, "number_of_executions")[0]["execution_count"]
    failed = server.execute("1/0")
    assert _only(failed, "number_of_executions") == [
        {"type": "number_of_executions", "execution_count": count + 1}
    ]
    assert server.text("state_x + 1") == "42"
    assert server.text("'quoted'") == "quoted"


def test_error_shape(server: Server) -> None:
    lines = server.execute("def f():\n    raise ValueError('bad value')\nf()")
    (error,) = _only(lines, "error")
    assert error["name"] == "ValueError"
    assert error["value"] == "bad value"
    assert "raise ValueError('bad value')" in error["traceback"]
    assert "\x1b[" not in error["traceback"]


def test_streams_shell_escapes_and_magics(server: Server) -> None:
    lines = server.execute("import sys\nprint('out')\nprint('err', file=sys.stderr)\n!echo shell")
    assert "".join(line["text"] for line in _only(lines, "stdout")) == "out\nshell\r\n"
    assert "".join(line["text"] for line in _only(lines, "stderr")) == "err\n"
    assert all("timestamp" in line for line in _only(lines, "stdout"))
    assert server.text("%pwd") == server.home


def test_dataframe_has_column_oriented_json_safe_data(server: Server) -> None:
    code = (
        "import pandas as pd\n"
        "pd.DataFrame({'a': [1, 2], 'b': [0.5, None], 's': ['x', 'y'],\n"
        "              't': pd.to_datetime(['2024-01-01', '2024-01-02'])})"
    )
    (result,) = server.results(code)
    assert result["is_main_result"] is True
    data = result["data"]
    assert {key: data[key] for key in "abs"} == {"a": [1, 2], "b": [0.5, None], "s": ["x", "y"]}
    assert [value[:19] for value in data["t"]] == ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]
    assert "html" in result and "text" in result


def test_plot_has_png_and_chart_and_no_extra(server: Server) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 5, 6])\nplt.title('t')\n"
    code += "plt.show()"
    (result,) = server.results(code)
    assert result["is_main_result"] is False
    assert set(result) == {"type", "png", "text", "chart", "is_main_result"}
    assert result["chart"]["type"] == "line" and result["chart"]["title"] == "t"


def test_display_calls_and_unknown_mime_types(server: Server) -> None:
    code = (
        "from IPython.display import display, HTML\n"
        "display(HTML('<b>x</b>'))\n"
        "display({'application/x-thing': {'k': 1}, 'text/plain': 'thing'}, raw=True)\n"
        "'last'"
    )
    results = server.results(code)
    assert [r["is_main_result"] for r in results] == [False, False, True]
    assert results[0]["html"] == "<b>x</b>"
    assert results[1] == {
        "type": "result",
        "text": "thing",
        "extra": {"application/x-thing": {"k": 1}},
        "is_main_result": False,
    }
    assert results[2]["text"] == "last"


def test_env_vars_apply_to_one_execution_only(server: Server) -> None:
    assert server.text("import os; os.environ['SANDBOX_WIDE']") == "yes"
    server.execute("os.environ['OVERRIDDEN'] = 'original'")
    seen = server.text(
        "os.environ['OVERRIDDEN'] + os.environ['ONLY_NOW']",
        env_vars={"OVERRIDDEN": "new", "ONLY_NOW": "!"},
    )
    assert seen == "new!"
    assert server.text("os.environ['OVERRIDDEN'], os.environ.get('ONLY_NOW')") == (
        "('original', None)"
    )


def test_disconnect_interrupts_and_keeps_state(server: Server) -> None:
    server.execute("kept = 'still here'")
    body = {"code": "while True: pass", "context_id": None, "language": None}
    body["env_vars"] = {"DURING_LOOP": "1"}
    with pytest.raises(httpx.ReadTimeout):
        server.client.post("/execute", json=body, timeout=httpx.Timeout(60, read=1.0))
    started = time.monotonic()
    assert server.text("kept") == "still here"
    assert time.monotonic() - started < 5
    assert server.text("import os; os.environ.get('DURING_LOOP')") is None


def test_two_contexts_run_concurrently(server: Server) -> None:
    other = server.client.post("/contexts", json={"language": "python"}).json()
    assert server.client.get("/contexts").json()[-1] == other
    durations: dict[str, float] = {}

    def run(name: str, **fields: Any) -> None:
        started = time.monotonic()
        assert server.text("import time; time.sleep(1); 'slept'", **fields) == "slept"
        durations[name] = time.monotonic() - started

    threads = [
        threading.Thread(target=run, args=("default",)),
        threading.Thread(target=run, args=("other",), kwargs={"context_id": other["id"]}),
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(durations) == {"default", "other"}
    assert time.monotonic() - started < 1.9
    assert server.client.delete(f"/contexts/{other['id']}").status_code == 200


def test_kernel_death_is_reported_and_the_context_recovers(server: Server) -> None:
    context = server.client.post("/contexts", json={}).json()
    server.execute("doomed = 1", context_id=context["id"])
    lines = server.execute("import os; os._exit(3)", context_id=context["id"])
    (error,) = _only(lines, "error")
    assert error["name"] == "KernelDied"
    assert "exited with code 3" in error["value"] and "state" in error["value"]
    after = server.execute("doomed", context_id=context["id"])
    assert _only(after, "error")[0]["name"] == "NameError"
    assert server.text("'alive'", context_id=context["id"]) == "alive"
    server.client.delete(f"/contexts/{context['id']}")


def test_restart_loses_state_and_keeps_the_id(server: Server) -> None:
    context = server.client.post("/contexts", json={"cwd": "."}).json()
    server.execute("before_restart = 1", context_id=context["id"])
    assert server.client.post(f"/contexts/{context['id']}/restart").status_code == 200
    lines = server.execute("before_restart", context_id=context["id"])
    assert _only(lines, "error")[0]["name"] == "NameError"
    assert server.client.delete(f"/contexts/{context['id']}").status_code == 200
    assert server.client.delete(f"/contexts/{context['id']}").status_code == 404


def test_javascript_and_typescript_share_the_default_deno_context(server: Server) -> None:
    if deno_dir() is None:
        pytest.skip("deno is not in the template layers")
    lines = server.execute("let shared = 40; shared + 2", language="js")
    assert _only(lines, "result")[0]["text"] == "42", lines
    assert server.text("const n: number = shared; n", language="typescript") == "40"
    assert server.text('"text"', language="javascript") == "text"
    lines = server.execute("throw new Error('js bad')", language="js")
    assert _only(lines, "error")[0]["value"] == "js bad"
    assert server.text("Deno.env.get('JS_ENV')", language="js", env_vars={"JS_ENV": "v"}) == "v"
    assert server.text("Deno.env.get('JS_ENV') ?? 'none'", language="js") == "none"


def test_keepalive_after_five_silent_seconds(server: Server) -> None:
    lines = server.execute("import time; time.sleep(5.5); 'awake'")
    assert {"type": "keepalive"} in lines
    assert lines[-1]["text"] == "awake"


def test_bash_context(server: Server) -> None:
    lines = server.execute(
        'echo "$GREETING $SANDBOX_WIDE"', language="bash", env_vars={"GREETING": "hi"}
    )
    assert [line["text"] for line in _only(lines, "stdout")] == ["hi yes\n"]
    lines = server.execute('echo "[$GREETING]"', language="bash")
    assert [line["text"] for line in _only(lines, "stdout")] == ["[]\n"]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"code": "1", "context_id": "x", "language": "python"}, 400, "Only one of"),
        ({"code": "1", "context_id": "nope"}, 404, "Context nope not found"),
        ({"code": "1", "language": "java"}, 400, "Available languages: python"),
        ({"code": 1}, 400, "'code' must be a string"),
        ({"code": "1", "env_vars": {"A": 1}}, 400, "must be a string"),
    ],
)
def test_request_errors(server: Server, body: dict[str, Any], status: int, text: str) -> None:
    response = server.client.post("/execute", json=body)
    assert response.status_code == status
    assert text in response.text


def test_malformed_json_and_unknown_context_routes(server: Server) -> None:
    response = server.client.post("/execute", content=b"{not json")
    assert response.status_code == 400 and "not valid JSON" in response.text
    assert server.client.delete("/contexts/nope").status_code == 404
    assert server.client.post("/contexts/nope/restart").text == "Context nope not found"
    bad_cwd = server.client.post("/contexts", json={"cwd": "/does/not/exist"})
    assert bad_cwd.status_code == 400 and "/does/not/exist" in bad_cwd.text
