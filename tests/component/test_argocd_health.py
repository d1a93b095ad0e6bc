"""docs/argocd/health.lua, the Argo CD health check of a BlueGreenApp, run by two real Luas.

Every sample runs under both, and both must give the expected answer:

- `lua5.4` (the Debian package; `make apt` installs it) through docs/argocd/try-health.lua,
  which decodes the JSON as Argo CD hands objects to its scripts (numbers as floats, null as
  nil) and runs the check with only the base and table libraries;
- gopher-lua, the interpreter inside Argo CD, through tools/gopherlua (`argocd-lua`, built
  from the Go module proxy): a fresh state with only the base, table and package libraries
  open, `obj` as a global, the returned table's status checked, as Argo CD runs a check
  from argocd-cm.

Statuses are built with the API's own pydantic models, so a renamed status field fails here
too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bluegreen.api.v1alpha1 import GROUP, KIND, BlueGreenAppStatus, Condition, Phase
from tests.support.tools import go_tool

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "docs" / "argocd"
HEALTH = ARGOCD / "health.lua"
TRY = ARGOCD / "try-health.lua"
T0 = "2026-01-01T00:00:00Z"
INTERPRETERS = ("lua5.4", "gopher-lua")


def _argv(interpreter: str) -> list[str]:
    if interpreter == "gopher-lua":
        return [str(go_tool("argocd-lua")), str(HEALTH)]
    lua = shutil.which(interpreter)
    assert lua, f"{interpreter} is not installed: `make apt` installs the Debian package"
    return [lua, str(TRY)]


def health(obj: dict[str, Any], interpreter: str = "lua5.4") -> tuple[str, str]:
    result = subprocess.run(
        _argv(interpreter),
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, f"{interpreter}: {result.stderr}"
    status_line, _, rest = result.stdout.partition("\n")
    assert status_line.startswith("status: ") and rest.startswith("message: "), result.stdout
    assert rest.endswith("\n")
    return status_line.removeprefix("status: "), rest.removeprefix("message: ")[:-1]


def condition(type_: str, message: str) -> Condition:
    return Condition(
        type=type_,
        status="True",
        reason=type_ + "Reason",
        message=message,
        last_transition_time=T0,
    )


def app(generation: int | None = 3, **status: Any) -> dict[str, Any]:
    """A BlueGreenApp as the API server returns it; without `status` arguments, no status."""
    metadata: dict[str, Any] = {"name": "shop", "namespace": "default", "uid": "u-1"}
    if generation is not None:
        metadata["generation"] = generation
    obj: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}},
        },
    }
    if status:
        status.setdefault("observed_generation", generation)
        obj["status"] = BlueGreenAppStatus(**status).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    return obj


@dataclass(frozen=True)
class Case:
    obj: dict[str, Any]
    status: str
    message: str


WAITING = "Waiting for the bluegreen operator to report status"

# One sample of every phase, as the operator reports it with no message of its own.
BY_PHASE = {
    Phase.PENDING: Case(
        app(phase=Phase.PENDING), "Progressing", "Pending: The first colour is being deployed"
    ),
    Phase.HEALTHY: Case(
        app(phase=Phase.HEALTHY, active_color="blue", stable_revision="7c9f2d1"),
        "Healthy",
        "blue serves revision 7c9f2d1",
    ),
    Phase.DEPLOYING: Case(
        app(phase=Phase.DEPLOYING),
        "Progressing",
        "Deploying: The candidate colour is being deployed",
    ),
    Phase.ANALYZING: Case(
        app(phase=Phase.ANALYZING),
        "Progressing",
        "Analyzing: The candidate is being analysed before the switch",
    ),
    Phase.PAUSED: Case(
        app(phase=Phase.PAUSED), "Suspended", "Paused: waiting for promote or abort"
    ),
    Phase.OBSERVING: Case(
        app(phase=Phase.OBSERVING),
        "Progressing",
        "Observing: Traffic is on the candidate; the old colour is kept warm",
    ),
    Phase.ROLLING_BACK: Case(
        app(phase=Phase.ROLLING_BACK),
        "Progressing",
        "RollingBack: Traffic is going back to the stable colour",
    ),
    Phase.DEGRADED: Case(
        app(phase=Phase.DEGRADED),
        "Degraded",
        "Degraded: the last release failed; traffic is on the stable revision",
    ),
}

VERDICT = {
    Phase.PENDING: "Progressing",
    Phase.HEALTHY: "Healthy",
    Phase.DEPLOYING: "Progressing",
    Phase.ANALYZING: "Progressing",
    Phase.PAUSED: "Suspended",
    Phase.OBSERVING: "Progressing",
    Phase.ROLLING_BACK: "Progressing",
    Phase.DEGRADED: "Degraded",
}

EDGES = {
    "no-status-yet": Case(app(), "Progressing", WAITING),
    "no-status-no-generation": Case(app(generation=None), "Progressing", WAITING),
    "only-kopf-bookkeeping": Case(
        {**app(), "status": {"kopf": {"progress": {}}}}, "Progressing", WAITING
    ),
    "healthy-but-stale-generation": Case(
        app(generation=4, phase=Phase.HEALTHY, observed_generation=3),
        "Progressing",
        "Waiting for the bluegreen operator to act on generation 4 (it has seen 3)",
    ),
    "degraded-but-stale-generation": Case(
        app(generation=9, phase=Phase.DEGRADED, observed_generation=8, message="rolled back"),
        "Progressing",
        "Waiting for the bluegreen operator to act on generation 9 (it has seen 8)",
    ),
    "paused-but-stale-generation": Case(
        app(generation=12, phase=Phase.PAUSED, observed_generation=11),
        "Progressing",
        "Waiting for the bluegreen operator to act on generation 12 (it has seen 11)",
    ),
    "phase-but-no-observed-generation": Case(
        {**app(), "status": {"phase": "Healthy"}},
        "Progressing",
        "Waiting for the bluegreen operator to act on generation 3",
    ),
    "healthy-without-generation-in-metadata": Case(
        app(generation=None, phase=Phase.HEALTHY),
        "Healthy",
        "The active colour serves the stable revision",
    ),
    "degraded-with-message": Case(
        app(
            phase=Phase.DEGRADED,
            message="candidate 5d1e0aa not ready in 600s; rolled back to 7c9f2d1",
            conditions=[condition("Degraded", "ProgressDeadlineExceeded")],
        ),
        "Degraded",
        "candidate 5d1e0aa not ready in 600s; rolled back to 7c9f2d1",
    ),
    "degraded-message-from-degraded-condition": Case(
        app(
            phase=Phase.DEGRADED,
            conditions=[
                condition("Available", "blue serves 7c9f2d1"),
                condition("Degraded", "analysis error-rate failed 2 of 8"),
            ],
        ),
        "Degraded",
        "analysis error-rate failed 2 of 8",
    ),
    "deploying-message-from-progressing-condition": Case(
        app(
            phase=Phase.DEPLOYING,
            conditions=[
                condition("Available", "blue serves 7c9f2d1"),
                condition("Progressing", "green: 1 of 2 replicas ready"),
            ],
        ),
        "Progressing",
        "green: 1 of 2 replicas ready",
    ),
    "status-message-wins-over-conditions": Case(
        app(
            phase=Phase.OBSERVING,
            message="switched to green; 3 of 4 endpoints converged",
            conditions=[condition("Progressing", "not this one")],
        ),
        "Progressing",
        "switched to green; 3 of 4 endpoints converged",
    ),
    "empty-progressing-message-falls-back": Case(
        app(phase=Phase.ANALYZING, conditions=[condition("Progressing", "")]),
        "Progressing",
        "Analyzing: The candidate is being analysed before the switch",
    ),
    "paused-message-from-paused-condition": Case(
        app(phase=Phase.PAUSED, conditions=[condition("Paused", "manual promotion gate")]),
        "Suspended",
        "manual promotion gate",
    ),
    "healthy-with-message": Case(
        app(phase=Phase.HEALTHY, active_color="green", message="released shop:v2 in 41s"),
        "Healthy",
        "released shop:v2 in 41s",
    ),
    "message-with-quotes-newline-and-unicode": Case(
        app(
            phase=Phase.DEGRADED, message='image "shop:v3" → 503\nsee `kubectl bluegreen timeline`'
        ),
        "Degraded",
        'image "shop:v3" → 503\nsee `kubectl bluegreen timeline`',
    ),
    "unknown-phase-from-a-newer-operator": Case(
        {**app(), "status": {"phase": "Canarying", "observedGeneration": 3}},
        "Unknown",
        "Unknown phase Canarying",
    ),
}


def test_every_phase_of_the_api_has_a_sample() -> None:
    assert set(BY_PHASE) == set(Phase) == set(VERDICT)


@pytest.fixture(params=INTERPRETERS)
def interpreter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("phase", list(BY_PHASE), ids=[p.value for p in BY_PHASE])
def test_every_phase(phase: Phase, interpreter: str) -> None:
    case = BY_PHASE[phase]
    assert case.status == VERDICT[phase]
    assert health(case.obj, interpreter) == (case.status, case.message)


@pytest.mark.parametrize("phase", list(Phase), ids=[p.value for p in Phase])
def test_every_phase_uses_status_message(phase: Phase, interpreter: str) -> None:
    obj = app(phase=phase, message=f"operator says {phase.value}")
    assert health(obj, interpreter) == (VERDICT[phase], f"operator says {phase.value}")


@pytest.mark.parametrize("name", list(EDGES))
def test_edge_cases(name: str, interpreter: str) -> None:
    case = EDGES[name]
    assert health(case.obj, interpreter) == (case.status, case.message)


def test_large_generations_are_written_as_whole_numbers(interpreter: str) -> None:
    """No string.format under Argo CD: the digits are written by hand, and must be right."""
    for generation in (1, 10, 99, 100, 7305, 2**31 + 1):
        obj = app(generation=generation + 1, phase=Phase.HEALTHY, observed_generation=generation)
        assert health(obj, interpreter) == (
            "Progressing",
            f"Waiting for the bluegreen operator to act on generation {generation + 1} "
            f"(it has seen {generation})",
        )


def test_both_interpreters_refuse_what_argo_cd_does_not_open(tmp_path: Path) -> None:
    """The sandbox is real in both: a check that calls string.format fails under each."""
    bad = tmp_path / "health.lua"
    bad.write_text('hs = {}\nhs.status = string.format("%s", "Healthy")\nreturn hs\n')
    (tmp_path / "try-health.lua").write_text(TRY.read_text())
    obj = json.dumps(app())
    for argv in (
        [str(go_tool("argocd-lua")), str(bad)],
        [str(shutil.which("lua5.4")), str(tmp_path / "try-health.lua")],
    ):
        result = subprocess.run(argv, input=obj, capture_output=True, text=True, check=False)
        assert result.returncode != 0, argv
        assert "string" in result.stderr, result.stderr
    # gopher-lua with every library open (Argo CD's useOpenLibs) runs it.
    opened = subprocess.run(
        [str(go_tool("argocd-lua")), "-open-libs", str(bad)],
        input=obj,
        capture_output=True,
        text=True,
        check=True,
    )
    assert opened.stdout == "status: Healthy\nmessage: \n"


def test_an_invalid_status_is_unknown_as_in_argo_cd(tmp_path: Path) -> None:
    bad = tmp_path / "health.lua"
    bad.write_text('hs = {status = "Fine", message = "x"}\nreturn hs\n')
    result = subprocess.run(
        [str(go_tool("argocd-lua")), str(bad)],
        input=json.dumps(app()),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "status: Unknown\nmessage: Lua returned an invalid health status\n"


def test_health_lua_is_the_script_argo_cd_runs() -> None:
    """health.lua stands alone: a chunk that reads the global `obj` and returns `hs`."""
    text = HEALTH.read_text()
    assert "obj.status" in text
    assert text.rstrip().endswith("return hs")
    assert "require" not in text and "dofile" not in text and "io." not in text


def test_readme_registers_it_under_the_api_group_and_kind() -> None:
    readme = (ARGOCD / "README.md").read_text()
    key = f"resource.customizations.health.{GROUP}_{KIND}"
    assert key == "resource.customizations.health.bluegreen.dev_BlueGreenApp"
    assert f"  {key}: |" in readme
    assert "argocd-cm" in readme
    assert "ignoreDifferences" in readme
