"""Per-execution env vars: validation and the set/restore code of each kernel language."""

from __future__ import annotations

import os
import subprocess

import pytest

from corral.interpreter.env_code import (
    InvalidEnvVarsError,
    check_env_vars,
    restore_code,
    set_code,
)

from .template_tools import deno_dir

AWKWARD = 'it\'s "quoted" \\ $HOME `x` \n second line é'


def test_check_env_vars_accepts_null_and_string_maps() -> None:
    assert check_env_vars(None, "ipython") == {}
    assert check_env_vars({"A": "1", "B": ""}, "ipython") == {"A": "1", "B": ""}


@pytest.mark.parametrize(
    ("env_vars", "kernel", "complaint"),
    [
        (["A"], "ipython", "must be an object"),
        ({"A": 1}, "ipython", "must be a string"),
        ({"": "x"}, "ipython", "empty"),
        ({"A=B": "x"}, "ipython", "'='"),
        ({"A": "x\0"}, "deno", "NUL"),
        ({"my-var": "x"}, "bash", "not a valid shell variable name"),
    ],
)
def test_check_env_vars_says_what_is_wrong(env_vars: object, kernel: str, complaint: str) -> None:
    with pytest.raises(InvalidEnvVarsError, match=complaint):
        check_env_vars(env_vars, kernel)


def test_unknown_kernel_is_refused() -> None:
    with pytest.raises(ValueError, match="no env_vars support"):
        set_code("cobol", {"A": "1"})
    with pytest.raises(ValueError, match="no env_vars support"):
        restore_code("cobol")


def test_python_code_sets_and_restores_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_T_EXISTING", "before")
    monkeypatch.delenv("CORRAL_T_NEW", raising=False)
    exec(set_code("ipython", {"CORRAL_T_EXISTING": AWKWARD, "CORRAL_T_NEW": "n"}), {})
    assert os.environ["CORRAL_T_EXISTING"] == AWKWARD
    assert os.environ["CORRAL_T_NEW"] == "n"
    exec(restore_code("ipython"), {})
    assert os.environ["CORRAL_T_EXISTING"] == "before"
    assert "CORRAL_T_NEW" not in os.environ


def test_bash_code_sets_and_restores_in_a_real_shell() -> None:
    script = "\n".join(
        [
            "export KEEP=before; unset GONE; PLAIN=unexported",
            set_code("bash", {"KEEP": AWKWARD, "GONE": "g", "PLAIN": "p"}),
            'printf "%s|" "$KEEP" "$GONE" "$(printenv PLAIN)"',
            restore_code("bash"),
            'printf "%s|" "$KEEP" "${GONE-unset}" "$PLAIN" "$(printenv PLAIN || echo none)"',
            'printf "%s" "${__corral_env_restore-clean}"',
        ]
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == f"{AWKWARD}|g|p|before|unset|unexported|none|clean"


@pytest.mark.skipif(deno_dir() is None, reason="no deno: template not built, none on PATH")
def test_deno_code_sets_and_restores() -> None:
    script = "\n".join(
        [
            'Deno.env.set("KEEP", "before"); Deno.env.delete("GONE");',
            set_code("deno", {"KEEP": AWKWARD, "GONE": "g"}),
            'console.log(JSON.stringify([Deno.env.get("KEEP"), Deno.env.get("GONE")]));',
            restore_code("deno"),
            'console.log(JSON.stringify([Deno.env.get("KEEP"), Deno.env.get("GONE") ?? null]));',
        ]
    )
    result = subprocess.run(
        [os.path.join(str(deno_dir()), "deno"), "eval", "--allow-env", script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [f'["{_js(AWKWARD)}","g"]', '["before",null]']


def _js(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def test_r_code_quotes_every_string() -> None:
    code = set_code("ir", {"A": 'x"y\\z\n\x01'})
    assert code == (
        '.corral_saved_env <- Sys.getenv(c("A"), unset = NA, names = TRUE); '
        'invisible(Sys.setenv("A" = "x\\"y\\\\z\\n\\x01"))'
    )
    assert "Sys.unsetenv" in restore_code("ir") and "rm(.corral_saved_env)" in restore_code("ir")
