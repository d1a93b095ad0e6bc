"""The pure parts of `kubectl bluegreen undo|set image|restart|watch|lint`: argument
parsing, the template kept on each colour's Deployment, image changes, when a wait is over,
and lint's messages."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bluegreen.api import BlueGreenApp, Color
from bluegreen.api.v1alpha1.base import METRIC_KIND
from bluegreen.core import naming, render
from bluegreen.core.revision import revision
from bluegreen.kubectl import lint, live, templates
from bluegreen.kubectl.cli import build_parser

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"tier": "web"}},
    "spec": {
        "initContainers": [{"name": "migrate", "image": "registry.example/migrate:v1"}],
        "containers": [
            {"name": "app", "image": "registry.example/shop:v1"},
            {"name": "sidecar", "image": "registry.example/proxy:v1"},
        ],
    },
}


def app(template: dict[str, Any] | None = None) -> BlueGreenApp:
    return BlueGreenApp.model_validate(
        {
            "metadata": {"name": "shop", "namespace": "ns", "uid": "u1"},
            "spec": {"replicas": 2, "template": template or TEMPLATE},
        }
    )


def as_served(manifest: dict[str, Any], ready: int = 2) -> dict[str, Any]:
    """A rendered Deployment as the API server answers it: defaults added to the pods."""
    served = copy.deepcopy(manifest)
    for c in served["spec"]["template"]["spec"]["containers"]:
        c.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/x"})
    served["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    served["status"] = {"readyReplicas": ready}
    return served


# ----------------------------------------------------------------------------- parser


def test_parser_of_the_new_commands() -> None:
    p = build_parser()
    undo = p.parse_args(["undo", "shop", "--to-revision", "abc", "--wait", "--timeout", "30s"])
    assert (undo.command, undo.name, undo.to_revision, undo.wait, undo.timeout) == (
        "undo",
        "shop",
        "abc",
        True,
        30.0,
    )
    assert p.parse_args(["undo", "shop"]).to_revision is None
    image = p.parse_args(["-n", "x", "set", "image", "shop", "app=a:1", "side=b:2", "--wait"])
    assert (image.command, image.set_command, image.images, image.namespace) == (
        "set",
        "image",
        ["app=a:1", "side=b:2"],
        "x",
    )
    restart = p.parse_args(["restart", "shop", "--force"])
    assert (restart.force, restart.wait, restart.timeout) == (True, False, 120.0)
    watch = p.parse_args(["watch", "shop", "--until-settled", "--timeout", "5m"])
    assert (watch.until_settled, watch.timeout) == (True, 300.0)
    assert p.parse_args(["lint", "a.yaml", "-"]).files == ["a.yaml", "-"]


@pytest.mark.parametrize(
    "argv",
    [
        ["set", "image", "shop"],
        ["set", "shop", "app=x"],
        ["undo"],
        ["watch", "shop", "--timeout", "0"],
        ["lint"],
        ["restart"],
    ],
)
def test_parser_refuses(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


# ----------------------------------------------------------------------------- undo


def test_a_rendered_deployment_keeps_the_template_undo_sets_back() -> None:
    a = app()
    served = as_served(render.deployment(a, Color.GREEN, 2))
    # The pod template is not the user's: labels, env and the server's defaults were added.
    assert revision(served["spec"]["template"]) != render.target_revision(a)
    kept = templates.kept_template(served)
    assert kept is not None
    assert (kept.revision, kept.color, kept.warm) == (render.target_revision(a), "green", True)
    assert kept.template == TEMPLATE
    assert templates.kept_template(as_served(render.deployment(a, Color.GREEN, 0), 0)) == (
        templates.Kept(kept.revision, "green", TEMPLATE, warm=False)
    )


def test_a_pinned_colour_is_undone_to_its_digests() -> None:
    digest = "registry.example/shop@sha256:" + "ab" * 32
    a = app()
    pins = {"registry.example/shop:v1": digest}
    kept = templates.kept_template(as_served(render.deployment(a, Color.BLUE, 2, pins)))
    assert kept is not None
    assert kept.revision == render.target_revision(a, pins)
    assert kept.template["spec"]["containers"][0]["image"] == digest
    # The template with the digest is that revision, so the operator reuses the colour.
    assert render.target_revision(app(kept.template)) == kept.revision


def test_a_deployment_without_a_kept_template_or_with_a_forged_one() -> None:
    served = as_served(render.deployment(app(), Color.BLUE, 2))
    old = copy.deepcopy(served)
    del old["metadata"]["annotations"][naming.ANNOTATION_TEMPLATE]
    assert templates.kept_template(old) is None  # made by an operator before this one
    forged = copy.deepcopy(served)
    other = copy.deepcopy(TEMPLATE)
    other["spec"]["containers"][0]["image"] = "registry.example/shop:v9"
    forged["metadata"]["annotations"][naming.ANNOTATION_TEMPLATE] = json.dumps(other)
    assert templates.kept_template(forged) is None  # not the revision the colour runs


def test_a_template_too_large_to_keep_is_not_kept() -> None:
    big = copy.deepcopy(TEMPLATE)
    big["spec"]["containers"][0]["env"] = [{"name": "BLOB", "value": "x" * 140_000}]
    annotations = render.deployment(app(big), Color.BLUE, 2)["metadata"]["annotations"]
    assert naming.ANNOTATION_TEMPLATE not in annotations  # the Deployment stays applicable
    assert naming.ANNOTATION_IMAGE in annotations


def test_previous_revision_and_match() -> None:
    status = {
        "stableRevision": "r3",
        "history": [
            {"revision": "r3", "result": "Promoted"},
            {"revision": "r4", "result": "RolledBack"},
            {"revision": "r2", "result": "Promoted"},
            {"revision": "r1", "result": "Promoted"},
        ],
    }
    assert templates.previous_revision(status) == "r2"
    assert templates.previous_revision({"stableRevision": "r1", "history": []}) is None
    known = ["abc123", "abd999", "ffff00"]
    assert templates.match_revision("ffff00", known) == "ffff00"
    assert templates.match_revision("abc", known) == "abc123"
    with pytest.raises(templates.TemplateError, match="ambiguous: abc123, abd999"):
        templates.match_revision("ab", known)
    with pytest.raises(templates.TemplateError, match="not in the app's history"):
        templates.match_revision("zz", known)


# ----------------------------------------------------------------------------- set image


def test_set_images() -> None:
    pairs = templates.parse_assignments(["app=registry.example/shop:v2", "migrate=m:v2"])
    changed, changes = templates.set_images(TEMPLATE, pairs)
    assert changes == [
        ("migrate", "registry.example/migrate:v1", "m:v2"),
        ("app", "registry.example/shop:v1", "registry.example/shop:v2"),
    ]
    assert changed["spec"]["containers"][1] == TEMPLATE["spec"]["containers"][1]
    assert TEMPLATE["spec"]["containers"][0]["image"] == "registry.example/shop:v1"  # a copy
    _all, every = templates.set_images(TEMPLATE, {"*": "x:1"})
    assert [c for c, _a, _b in every] == ["migrate", "app", "sidecar"]
    assert templates.set_images(TEMPLATE, {"app": "registry.example/shop:v1"})[1] == []
    with pytest.raises(templates.TemplateError, match="unable to find container named 'db'"):
        templates.set_images(TEMPLATE, {"db": "x"})


@pytest.mark.parametrize("bad", ["app", "=x", "app=", "app=a b"])
def test_assignments_refused(bad: str) -> None:
    with pytest.raises(templates.TemplateError, match="expected CONTAINER=IMAGE"):
        templates.parse_assignments([bad])
    with pytest.raises(templates.TemplateError, match="two images"):
        templates.parse_assignments(["a=x:1", "a=x:2"])


# ----------------------------------------------------------------------------- waiting


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({"observedGeneration": 2, "phase": "Healthy"}, None),  # the old generation
        ({"observedGeneration": 3, "phase": "Deploying"}, None),
        ({"observedGeneration": 3, "phase": "Healthy"}, "Healthy"),
        ({"observedGeneration": 3, "phase": "Degraded"}, "Degraded"),
        ({"observedGeneration": 3, "phase": "Paused"}, "Paused"),
        (
            {
                "observedGeneration": 3,
                "phase": "Paused",
                "release": {"promotionRequestedAt": "2026-01-01T00:00:00Z"},
            },
            None,
        ),
    ],
)
def test_release_outcome(status: dict[str, Any], outcome: str | None) -> None:
    assert templates.release_outcome(3, status) == outcome


def deployment_status(**st: int) -> dict[str, Any]:
    return {"metadata": {"generation": 4}, "spec": {"replicas": 3}, "status": st}


def test_restart_done_and_patch() -> None:
    done = {"observedGeneration": 4, "updatedReplicas": 3, "readyReplicas": 3}
    assert templates.restart_done(deployment_status(**done, availableReplicas=3, replicas=3))
    assert not templates.restart_done(deployment_status(**done, availableReplicas=3, replicas=4))
    stale = {**done, "observedGeneration": 3}
    assert not templates.restart_done(deployment_status(**stale, availableReplicas=3, replicas=3))
    patch = templates.restart_patch("2026-01-01T00:00:00Z")
    assert patch["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    annotations = patch["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("meta", "status", "settled"),
    [
        ({"generation": 1}, {"observedGeneration": 1, "phase": "Healthy"}, True),
        ({"generation": 2}, {"observedGeneration": 1, "phase": "Healthy"}, False),
        ({"generation": 1}, {"observedGeneration": 1, "phase": "Observing"}, False),
        (
            {"generation": 1, "annotations": {naming.ANNOTATION_REQUEST: "abort"}},
            {"observedGeneration": 1, "phase": "Paused"},
            False,
        ),
        ({"generation": 1}, {"observedGeneration": 1, "phase": "Degraded"}, True),
    ],
)
def test_watch_settled(meta: dict[str, Any], status: dict[str, Any], settled: bool) -> None:
    assert live.settled({"metadata": meta, "status": status}) is settled


# ----------------------------------------------------------------------------- lint


def manifest(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "bluegreen.dev/v1alpha1",
        "kind": "BlueGreenApp",
        "metadata": {"name": "shop"},
        "spec": {"template": copy.deepcopy(TEMPLATE), **spec},
    }
    return body


def test_lint_problems() -> None:
    assert lint.problems(manifest()) == []
    metric = {"name": "m", "query": "up", "url": "http://x", "thresholdRange": {"max": 1}}
    assert lint.problems(manifest(analysis={"prePromotion": [metric]})) == [
        f"spec.analysis.prePromotion[0]: Invalid value: {METRIC_KIND}"
    ]
    upper = lint.problems({**manifest(), "metadata": {"name": "Shop"}})
    assert upper[0].startswith('metadata.name: Invalid value: "Shop": a lowercase RFC 1123')
    assert upper[1].startswith("<nil>: Invalid value: metadata.name must be a DNS-1035 label")
    assert lint.problems({**manifest(), "metadata": {"name": "a" * 56}}) == [
        f"<nil>: Invalid value: {lint.NAME_TOO_LONG}"
    ]
    assert lint.problems({**manifest(), "spec": {}}) == ["spec.template: Required value"]
    assert lint.problems(manifest(bogus=1)) == ['unknown field "spec.bogus"']
    assert lint.field_path(["spec", "a", 0, "function-after[x]", "b"]) == "spec.a[0].b"


def test_watch_and_lint_print_no_control_character(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = ("12:00:00", "Degraded", "blue", "r1", "r2", "2/2", "bad\x1b[2J\nFORGED ROW")
    out = live.line(cells)
    assert "\x1b" not in out and "\n" not in out
    assert out.endswith("bad\\x1b[2J\\nFORGED ROW")
    body = manifest()
    body["metadata"]["name"] = "shop\x1b]0;title\x07"
    path = tmp_path / "app.yaml"
    path.write_text(json.dumps(body))
    assert lint.cmd_lint(build_parser().parse_args(["lint", str(path)])) == 1
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\x07" not in printed
    assert 'bluegreenapp "shop\\x1b]0;title\\x07": metadata.name' in printed
