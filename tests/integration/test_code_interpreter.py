"""The code interpreter (port 49999) end to end, through the unmodified `e2b-code-interpreter` SDK.

What shared/e2b-protocol.md §8 and §11.2 promise: contexts and their kernels, results and
their MIME types, pandas and matplotlib results, errors, streamed output, timeouts, envs, the
other languages, and what a dead kernel or a killed sandbox looks like to the SDK.

Every test runs with the sync client (`Sandbox`, from worker threads) and the async client
(`AsyncSandbox`) through `code_interpreter_helpers.Interpreter`. One sandbox per client serves
the module; a test that changes a kernel's state (cwd, restart, interrupt, death) takes a
context of its own, and tests that need a new sandbox make one. The module is skipped when the
`code-interpreter-v1` template is not built on this machine; in CI, which always builds it, a
missing template fails the module instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from code_interpreter_helpers import (
    TEMPLATE,
    AsyncInterpreter,
    ClientKind,
    Interpreter,
    Recorder,
    SyncInterpreter,
    column_lists,
    create_interpreter,
    fresh_context,
    main_result,
    run_ok,
)
from e2b import NotFoundException, SandboxException, TimeoutException
from e2b_code_interpreter import AsyncSandbox, Context, Sandbox  # type: ignore[import-untyped]

from corral.config import DEFAULT_TEMPLATES_DIR, ENV_TEMPLATES_DIR
from corral.templates import TemplateError, load_template


def _template_missing_reason() -> str | None:
    templates_dir = Path(os.environ.get(ENV_TEMPLATES_DIR) or DEFAULT_TEMPLATES_DIR)
    try:
        load_template(templates_dir, TEMPLATE)
    except TemplateError as exc:
        return (
            f"template {TEMPLATE!r} is not built in {templates_dir} ({exc}): "
            f"build it with `corral template build {TEMPLATE}`"
        )
    return None


MISSING_TEMPLATE = _template_missing_reason()
IN_CI = bool(os.environ.get("CI"))

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.requires_isolation,
    pytest.mark.skipif(MISSING_TEMPLATE is not None and not IN_CI, reason=str(MISSING_TEMPLATE)),
]

HOME = "/home/user"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DIED_WORDS = ("died", "dead", "crash", "restart")
SVG_SOURCE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
    '<rect width="4" height="4"/></svg>'
)


def stdout_lines(execution: Any) -> list[str]:
    """The execution's stdout as lines (`!cmd` runs under a pty, whose lines end in CRLF)."""
    return "".join(execution.logs.stdout).splitlines()


def _require_template() -> None:
    if MISSING_TEMPLATE is not None:
        pytest.fail(f"CI always builds it, yet {MISSING_TEMPLATE}", pytrace=False)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sync_interpreter(corral_server: Any) -> Iterator[Interpreter]:
    """The sync client's sandbox for the whole module."""
    _require_template()
    sbx = Sandbox.create(timeout=600)
    try:
        yield SyncInterpreter(sbx)
    finally:
        with contextlib.suppress(Exception):
            sbx.kill()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def async_interpreter(corral_server: Any) -> AsyncIterator[Interpreter]:
    """The async client's sandbox for the whole module."""
    _require_template()
    sbx = await AsyncSandbox.create(timeout=600)
    try:
        yield AsyncInterpreter(sbx)
    finally:
        with contextlib.suppress(Exception):
            await sbx.kill()


@pytest.fixture(params=["sync", "async"])
def interp(request: pytest.FixtureRequest) -> Interpreter:
    """The module's sandbox of one client (the test runs once per client)."""
    interpreter: Interpreter = request.getfixturevalue(f"{request.param}_interpreter")
    return interpreter


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> ClientKind:
    client: ClientKind = request.param
    return client


@pytest_asyncio.fixture(loop_scope="module")
async def new_interpreter(
    kind: ClientKind, corral_server: Any
) -> AsyncIterator[Callable[..., Awaitable[Interpreter]]]:
    """`await make(**create_kwargs)`: a new sandbox of the `kind` client, killed at the end."""
    _require_template()
    made: list[Interpreter] = []

    async def make(**create_kwargs: Any) -> Interpreter:
        create_kwargs.setdefault("timeout", 120)
        interpreter = await create_interpreter(kind, **create_kwargs)
        made.append(interpreter)
        return interpreter

    yield make
    for interpreter in made:
        with contextlib.suppress(Exception):
            await interpreter.kill()


# --- contexts: state, isolation, lifecycle --------------------------------------------------


async def test_variables_imports_and_functions_persist_in_a_context(interp: Interpreter) -> None:
    async with fresh_context(interp) as ctx:
        await run_ok(
            interp, "import json\ncounter = 41\ndef bump(n):\n    return n + 1", context=ctx
        )
        later = await run_ok(interp, "bump(counter) + len(json.dumps([]))", context=ctx)
        assert later.text == "44"


async def test_working_directory_persists_through_chdir_and_cd(interp: Interpreter) -> None:
    async with fresh_context(interp) as ctx:
        assert ctx.cwd == HOME
        start = await run_ok(interp, "import os\nos.getcwd() == '/home/user'", context=ctx)
        assert start.text == "True"
        await run_ok(interp, "os.chdir('/tmp')", context=ctx)
        assert (await run_ok(interp, "os.getcwd() == '/tmp'", context=ctx)).text == "True"
        await run_ok(interp, "%cd /usr", context=ctx)
        assert (await run_ok(interp, "os.getcwd() == '/usr'", context=ctx)).text == "True"
        shell = await run_ok(interp, "!pwd", context=ctx)
        assert stdout_lines(shell) == ["/usr"]


async def test_contexts_are_separate_kernels(interp: Interpreter) -> None:
    async with fresh_context(interp) as ctx:
        await run_ok(interp, "import os\nonly_in_new = 1", context=ctx)
        await run_ok(interp, "import os\nonly_in_default = 2")
        in_default = await interp.run_code("only_in_new")
        assert in_default.error is not None and in_default.error.name == "NameError"
        in_new = await interp.run_code("only_in_default", context=ctx)
        assert in_new.error is not None and in_new.error.name == "NameError"
        new_pid = (await run_ok(interp, "os.getpid()", context=ctx)).text
        default_pid = (await run_ok(interp, "os.getpid()")).text
        assert new_pid != default_pid


async def test_language_selects_that_languages_default_context(interp: Interpreter) -> None:
    await run_ok(interp, "default_marker = 'py'", language="python")
    assert (await run_ok(interp, "default_marker == 'py'")).text == "True"
    await run_ok(interp, "globalThis.corralMarker = 41", language="javascript")
    js = await run_ok(interp, "corralMarker + 1", language="javascript")
    assert js.text == "42"
    alias = await run_ok(interp, "corralMarker + 2", language="js")
    assert alias.text == "43"


async def test_list_has_default_contexts_and_a_new_context_last(interp: Interpreter) -> None:
    listed = await interp.list_code_contexts()
    defaults = {c.language: c for c in listed if c.language in ("python", "javascript")}
    assert set(defaults) == {"python", "javascript"}, f"listed: {listed}"
    assert all(c.cwd == HOME for c in defaults.values()), f"listed: {listed}"
    async with fresh_context(interp, cwd="/tmp") as ctx:
        assert (ctx.language, ctx.cwd) == ("python", "/tmp")
        last = (await interp.list_code_contexts())[-1]
        assert (last.id, last.language, last.cwd) == (ctx.id, "python", "/tmp")
        inside = await run_ok(interp, "import os\nos.getcwd() == '/tmp'", context=ctx)
        assert inside.text == "True"


async def test_removed_context_is_gone(interp: Interpreter) -> None:
    ctx = await interp.create_code_context()
    await run_ok(interp, "1", context=ctx)
    await interp.remove_code_context(ctx)
    assert ctx.id not in {c.id for c in await interp.list_code_contexts()}
    with pytest.raises(NotFoundException, match=ctx.id):
        await interp.run_code("1", context=ctx)
    with pytest.raises(NotFoundException):
        await interp.remove_code_context(ctx.id)


async def test_restart_loses_state_but_keeps_the_id(interp: Interpreter) -> None:
    async with fresh_context(interp) as ctx:
        await run_ok(interp, "lost_on_restart = 1", context=ctx)
        await interp.restart_code_context(ctx)
        after = await interp.run_code("lost_on_restart", context=ctx)
        assert after.error is not None and after.error.name == "NameError"
        assert ctx.id in {c.id for c in await interp.list_code_contexts()}
        assert (await run_ok(interp, "1 + 1", context=ctx)).text == "2"


async def test_unknown_context_is_not_found(interp: Interpreter) -> None:
    ghost = Context("corral-no-such-context", "python", HOME)
    with pytest.raises(NotFoundException, match="corral-no-such-context"):
        await interp.run_code("1", context=ghost)
    with pytest.raises(NotFoundException):
        await interp.restart_code_context(ghost.id)
    with pytest.raises(NotFoundException):
        await interp.remove_code_context(ghost)


# --- IPython semantics ----------------------------------------------------------------------


async def test_shell_escape_and_magics(interp: Interpreter) -> None:
    shell = await run_ok(interp, "!echo hi")
    assert stdout_lines(shell) == ["hi"]
    timed = await run_ok(interp, "%time magic_sum = sum(range(1000))")
    assert "Wall time" in "".join(timed.logs.stdout)
    assert (await run_ok(interp, "magic_sum")).text == "499500"
    pwd = await run_ok(interp, "%pwd")
    assert pwd.text is not None and pwd.text.strip("'") == HOME


async def test_execution_count_increments_with_failed_cells_too(interp: Interpreter) -> None:
    first = await run_ok(interp, "1")
    failed = await interp.run_code("1 / 0")
    third = await run_ok(interp, "3")
    assert failed.error is not None and failed.error.name == "ZeroDivisionError"
    assert first.execution_count >= 1
    counts = [first.execution_count, failed.execution_count, third.execution_count]
    assert counts == [first.execution_count + i for i in range(3)]


# --- results --------------------------------------------------------------------------------


async def test_display_results_precede_the_main_result(interp: Interpreter) -> None:
    rec = Recorder()
    execution = await run_ok(
        interp,
        "from IPython.display import display\ndisplay(1)\ndisplay(2)\n3",
        on_result=rec.callback("result"),
    )
    shown = [(r.text, r.is_main_result) for r in execution.results]
    assert shown == [("1", False), ("2", False), ("3", True)]
    assert execution.text == "3"
    assert [(r.text, r.is_main_result) for r in rec.items("result")] == shown


async def test_no_main_result_without_a_final_expression(interp: Interpreter) -> None:
    execution = await run_ok(interp, "no_result = 1")
    assert execution.results == []
    assert execution.text is None


def _b64_starts_with(magic: bytes) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and base64.b64decode(value).startswith(magic)


def _figure_bytes_code(fmt: str) -> str:
    """Cell code binding `image_bytes` to a tiny image drawn without pyplot (so never shown)."""
    return (
        "import io\n"
        "from matplotlib.figure import Figure\n"
        "figure = Figure(figsize=(1, 1))\n"
        "figure.add_subplot().plot([0, 1], [1, 0])\n"
        "buffer = io.BytesIO()\n"
        f"figure.savefig(buffer, format={fmt!r})\n"
        "image_bytes = buffer.getvalue()\n"
    )


@dataclass(frozen=True)
class MimeCase:
    """One cell whose only result must carry `attr` satisfying `check`."""

    attr: str
    code: str
    check: Callable[[Any], bool]
    main: bool = True


MIME_CASES = {
    "text": MimeCase("text", "40 + 2", lambda v: v == "42"),
    "text-string-unquoted": MimeCase("text", "'corral'", lambda v: v == "corral"),
    "html": MimeCase(
        "html",
        "from IPython.display import HTML\nHTML('<b>corral</b>')",
        lambda v: v == "<b>corral</b>",
    ),
    "markdown": MimeCase(
        "markdown",
        "from IPython.display import Markdown\nMarkdown('# Corral')",
        lambda v: v == "# Corral",
    ),
    "svg": MimeCase(
        "svg",
        f"from IPython.display import SVG\nSVG({SVG_SOURCE!r})",
        lambda v: isinstance(v, str) and "<svg" in v and "<rect" in v,
    ),
    "png": MimeCase(
        "png",
        _figure_bytes_code("png")
        + "from IPython.display import Image\nImage(data=image_bytes, format='png')",
        _b64_starts_with(PNG_MAGIC),
    ),
    "jpeg": MimeCase(
        "jpeg",
        _figure_bytes_code("jpeg")
        + "from IPython.display import Image\nImage(data=image_bytes, format='jpeg')",
        _b64_starts_with(JPEG_MAGIC),
    ),
    "pdf": MimeCase(
        "pdf",
        "class PdfDocument:\n    def _repr_pdf_(self):\n        return b'%PDF-1.4 corral'\n"
        "PdfDocument()",
        _b64_starts_with(b"%PDF-1.4 corral"),
    ),
    "latex": MimeCase(
        "latex",
        "from IPython.display import Latex\nLatex(r'$\\alpha^2$')",
        lambda v: v == "$\\alpha^2$",
    ),
    "json": MimeCase(
        "json",
        "from IPython.display import JSON\nJSON({'corral': [1, 2]})",
        lambda v: v == {"corral": [1, 2]},
    ),
    "javascript": MimeCase(
        "javascript",
        "from IPython.display import Javascript\nJavascript('console.log(1)')",
        lambda v: v == "console.log(1)",
    ),
    "unknown-goes-to-extra": MimeCase(
        "extra",
        "display({'application/x-corral': {'k': 1}, 'text/plain': 'corral'}, raw=True)",
        lambda v: isinstance(v, dict) and v.get("application/x-corral") == {"k": 1},
        main=False,
    ),
}


@pytest.mark.parametrize("case", MIME_CASES.values(), ids=MIME_CASES.keys())
async def test_mime_type_maps_to_its_result_key(interp: Interpreter, case: MimeCase) -> None:
    execution = await run_ok(interp, case.code)
    assert len(execution.results) == 1, f"results: {execution.results}"
    result = execution.results[0]
    value = getattr(result, case.attr)
    assert case.check(value), f"{case.attr} = {value!r} (formats: {list(result.formats())})"
    assert result.is_main_result is case.main


async def test_dataframe_result_has_html_and_column_data(interp: Interpreter) -> None:
    execution = await run_ok(
        interp, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})"
    )
    frame = main_result(execution)
    assert frame.html is not None and "<table" in frame.html
    assert frame.data is not None, f"no e2b/data: formats {list(frame.formats())}"
    assert column_lists(frame.data) == {"a": [1, 2], "b": ["x", "y"]}


PLOT_CODE = """
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [4, 8, 6])
plt.title('Corral line')
plt.show()
"""


async def test_matplotlib_plot_gives_png_and_line_chart(interp: Interpreter) -> None:
    execution = await run_ok(interp, PLOT_CODE)
    plots = [r for r in execution.results if r.png]
    assert len(plots) == 1, f"results: {execution.results}"
    plot = plots[0]
    assert base64.b64decode(plot.png).startswith(PNG_MAGIC)
    assert not plot.extra, f"extra: {plot.extra}"
    chart = plot.chart
    assert chart is not None, f"no e2b/chart: formats {list(plot.formats())}"
    assert chart.type == "line"
    assert chart.title == "Corral line"
    assert len(chart.elements) == 1
    points = [(float(x), float(y)) for x, y in chart.elements[0].points]
    assert points == [(1.0, 4.0), (2.0, 8.0), (3.0, 6.0)]


# --- errors ---------------------------------------------------------------------------------


async def test_runtime_error_has_name_value_and_plain_traceback(interp: Interpreter) -> None:
    rec = Recorder()
    execution = await interp.run_code(
        "def fail():\n    return corral_undefined_name\nfail()", on_error=rec.callback("error")
    )
    error = execution.error
    assert error is not None
    assert error.name == "NameError"
    assert "corral_undefined_name" in error.value
    assert "NameError" in error.traceback and "fail()" in error.traceback
    assert "\x1b[" not in error.traceback, f"ANSI escapes in {error.traceback!r}"
    assert execution.results == []
    assert [(e.name, e.value) for e in rec.items("error")] == [(error.name, error.value)]


async def test_syntax_error(interp: Interpreter) -> None:
    rec = Recorder()
    execution = await interp.run_code("def broken(:\n    pass", on_error=rec.callback("error"))
    error = execution.error
    assert error is not None and error.name == "SyntaxError"
    assert "\x1b[" not in error.traceback, f"ANSI escapes in {error.traceback!r}"
    assert len(rec.items("error")) == 1


# --- streaming ------------------------------------------------------------------------------

STREAM_PAUSE = 0.6
STREAM_CODE = f"""
import sys, time
print('out-1', flush=True)
time.sleep({STREAM_PAUSE})
print('err-1', file=sys.stderr, flush=True)
time.sleep({STREAM_PAUSE})
print('out-2', flush=True)
time.sleep({STREAM_PAUSE})
"""


async def test_stdout_and_stderr_stream_in_order_while_the_cell_runs(interp: Interpreter) -> None:
    rec = Recorder()
    execution = await run_ok(
        interp, STREAM_CODE, on_stdout=rec.callback("stdout"), on_stderr=rec.callback("stderr")
    )
    ended = time.monotonic()
    arrived = [(label, msg.line, msg.error) for label, msg, _ in rec.events]
    assert arrived == [
        ("stdout", "out-1\n", False),
        ("stderr", "err-1\n", True),
        ("stdout", "out-2\n", False),
    ]
    assert all(msg.timestamp for _, msg, _ in rec.events)
    # The cell sleeps STREAM_PAUSE after each line: a line that arrives only with the end of
    # the cell (buffered output) is too late by about that much.
    for pauses_left, (_, msg, at) in zip((3, 2, 1), rec.events, strict=True):
        early_by = ended - at
        assert early_by >= pauses_left * STREAM_PAUSE - 0.3, (
            f"{msg.line!r} arrived {early_by:.2f}s before the cell ended"
        )
    assert execution.logs.stdout == ["out-1\n", "out-2\n"]
    assert execution.logs.stderr == ["err-1\n"]


# --- timeouts and concurrency ---------------------------------------------------------------


async def test_timeout_interrupts_the_cell_and_the_context_keeps_its_state(
    interp: Interpreter,
) -> None:
    async with fresh_context(interp) as ctx:
        await run_ok(interp, "kept = 7", context=ctx)
        started = time.monotonic()
        with pytest.raises(TimeoutException):
            await interp.run_code("while True:\n    pass", context=ctx, timeout=2)
        assert time.monotonic() - started < 10
        resumed = time.monotonic()
        after = await run_ok(interp, "kept", context=ctx, timeout=30)
        assert after.text == "7"
        assert time.monotonic() - resumed < 5, "the interrupted kernel answered late"


async def test_two_contexts_execute_concurrently(interp: Interpreter) -> None:
    async with fresh_context(interp) as ctx:
        await run_ok(interp, "import time", context=ctx)
        await run_ok(interp, "import time")
        started = time.monotonic()
        first, second = await asyncio.gather(
            run_ok(interp, "time.sleep(1)\n'first'", context=ctx),
            run_ok(interp, "time.sleep(1)\n'second'"),
        )
        elapsed = time.monotonic() - started
        assert (first.text, second.text) == ("first", "second")
        assert elapsed < 1.8, f"two 1 s cells in two contexts took {elapsed:.2f}s"


async def test_executions_in_one_context_are_serialised(interp: Interpreter) -> None:
    async with fresh_context(interp) as ctx:
        await run_ok(interp, "import time\norder = []", context=ctx)
        started = time.monotonic()
        await asyncio.gather(
            run_ok(interp, "time.sleep(0.8)\norder.append('a')", context=ctx),
            run_ok(interp, "time.sleep(0.8)\norder.append('b')", context=ctx),
        )
        elapsed = time.monotonic() - started
        assert elapsed >= 1.5, f"two 0.8 s cells of one context overlapped ({elapsed:.2f}s)"
        both = await run_ok(interp, "sorted(order) == ['a', 'b']", context=ctx)
        assert both.text == "True"


# --- environment variables ------------------------------------------------------------------


async def test_per_call_envs_are_visible_only_in_that_call(interp: Interpreter) -> None:
    envs = {"CORRAL_CALL_ENV": "one"}
    inside = await run_ok(
        interp, "import os\nos.environ.get('CORRAL_CALL_ENV') == 'one'", envs=envs
    )
    assert inside.text == "True"
    shell = await run_ok(interp, "!echo $CORRAL_CALL_ENV", envs=envs)
    assert stdout_lines(shell) == ["one"]
    after = await run_ok(interp, "os.environ.get('CORRAL_CALL_ENV') is None")
    assert after.text == "True"


async def test_new_sandbox_runs_code_at_once_and_sees_its_envs(
    new_interpreter: Callable[..., Awaitable[Interpreter]],
) -> None:
    interp = await new_interpreter(envs={"CORRAL_SANDBOX_ENV": "from-create"})
    first = await run_ok(interp, "1 + 1")
    assert first.text == "2"
    first_js = await run_ok(interp, "40 + 2", language="javascript")
    assert first_js.text == "42"
    check = "import os\nos.environ.get('CORRAL_SANDBOX_ENV') == '{}'"
    assert (await run_ok(interp, check.format("from-create"))).text == "True"
    async with fresh_context(interp) as ctx:
        assert (await run_ok(interp, check.format("from-create"), context=ctx)).text == "True"
    override = {"CORRAL_SANDBOX_ENV": "per-call"}
    assert (await run_ok(interp, check.format("per-call"), envs=override)).text == "True"
    assert (await run_ok(interp, check.format("from-create"))).text == "True"


# --- other languages ------------------------------------------------------------------------


async def test_javascript_result_and_console_log(interp: Interpreter) -> None:
    value = await run_ok(interp, "const a = 1; a + 1", language="javascript")
    assert value.text == "2"
    logged = await run_ok(interp, "console.log('hi from deno')", language="javascript")
    assert "".join(logged.logs.stdout) == "hi from deno\n"


async def test_typescript(interp: Interpreter) -> None:
    value = await run_ok(interp, "let x: number = 3; x * 2", language="typescript")
    assert value.text == "6"


async def test_bash(interp: Interpreter) -> None:
    shell = await run_ok(interp, "echo hi", language="bash")
    assert "".join(shell.logs.stdout) == "hi\n"


async def test_r(interp: Interpreter) -> None:
    # IRkernel sends a visible value as display_data, never execute_result: not a main result.
    value = await run_ok(interp, "1+1", language="r")
    assert [r.text for r in value.results] == ["[1] 2"]


# --- failures: a dead kernel, a killed sandbox ----------------------------------------------


async def test_killed_kernel_is_reported_and_the_context_recovers(interp: Interpreter) -> None:
    async with fresh_context(interp) as ctx:
        died = await interp.run_code("import os\nos._exit(1)", context=ctx, timeout=60)
        assert died.error is not None, f"no error for a kernel that exited: {died}"
        message = f"{died.error.name}: {died.error.value}"
        assert any(word in message.lower() for word in DIED_WORDS), (
            f"unclear error for a dead kernel: {message!r}"
        )
        if not await _answers_two(interp, ctx):
            await interp.restart_code_context(ctx)
            assert await _answers_two(interp, ctx), "restart did not bring the context back"


async def _answers_two(interp: Interpreter, ctx: Any) -> bool:
    try:
        execution = await interp.run_code("1 + 1", context=ctx, timeout=30)
    except SandboxException:
        return False
    return execution.error is None and execution.text == "2"


async def test_sandbox_killed_mid_execution_raises_timeout(
    new_interpreter: Callable[..., Awaitable[Interpreter]],
) -> None:
    interp = await new_interpreter()
    running = threading.Event()  # the sync client calls back on a worker thread
    execution = asyncio.ensure_future(
        interp.run_code(
            "import time\nprint('running', flush=True)\ntime.sleep(60)",
            on_stdout=lambda _msg: running.set(),
            timeout=90,
        )
    )
    assert await asyncio.to_thread(running.wait, 30), "the cell never started"
    await interp.kill()
    killed = time.monotonic()
    with pytest.raises(TimeoutException, match="killed"):
        await asyncio.wait_for(execution, 30)
    assert time.monotonic() - killed < 15
