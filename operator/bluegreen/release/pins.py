"""Image digests (spec.image.resolveDigest): which reference each image runs as.

Required: an image that does not exist (or cannot be pinned) fails the release before any
pod; a registry that does not answer holds everything until it does. IfPossible: both fall
back to the tag, and the ImagePinned condition says why. A registry that does not answer
never changes a pin made before, so an outage is never a reason for a release.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bluegreen.api import BlueGreenApp
from bluegreen.api.reasons import Reason
from bluegreen.api.v1alpha1 import ResolveDigest
from bluegreen.core import render
from bluegreen.core.images import Resolution, ResolutionOutcome
from bluegreen.core.world import Observed


class IssueKind(enum.Enum):
    FAIL = "fail"
    """The release fails before any pod of it exists."""
    HOLD = "hold"
    """Nothing moves until the registry answers."""
    WARN = "warn"
    """The release goes on by tag; the ImagePinned condition says why."""


@dataclass(frozen=True)
class ImageIssue:
    """Why the template's images are not (all) pinned to digests."""

    kind: IssueKind
    reason: Reason
    message: str


def resolve_pins(app: BlueGreenApp, observed: Observed) -> tuple[dict[str, str], ImageIssue | None]:
    """Each image as written -> the reference to run, and the most serious issue, if any."""
    policy = app.spec.image.resolve_digest
    if policy is ResolveDigest.NEVER:
        return {}, None
    required = policy is ResolveDigest.REQUIRED
    known = app.status.pinned_images
    pins: dict[str, str] = {}
    issues: list[ImageIssue] = []
    for image in render.images(app):
        r = observed.images.get(image)
        if r is not None and r.pinned_image is not None:
            pins[image] = r.pinned_image
        elif image in known and _outcome(r) in (
            ResolutionOutcome.UNAVAILABLE,
            ResolutionOutcome.NOT_FOUND,
        ):
            pins[image] = known[image]  # keep what runs
        else:
            issue = _issue(image, r, required)
            if issue is not None:
                issues.append(issue)
    return pins, _most_serious(issues)


def _outcome(r: Resolution | None) -> ResolutionOutcome:
    return r.outcome if r is not None else ResolutionOutcome.UNAVAILABLE


def _issue(image: str, r: Resolution | None, required: bool) -> ImageIssue | None:
    outcome = _outcome(r)
    message = r.message if r is not None else f"{image}: not resolved yet"
    strict = IssueKind.FAIL if required else IssueKind.WARN
    if outcome is ResolutionOutcome.UNAVAILABLE:
        kind = IssueKind.HOLD if required else IssueKind.WARN
        return ImageIssue(kind, Reason.REGISTRY_UNAVAILABLE, message)
    if outcome is ResolutionOutcome.NOT_FOUND:
        return ImageIssue(strict, Reason.IMAGE_NOT_FOUND, message)
    if outcome is ResolutionOutcome.NOT_ECR:
        return ImageIssue(
            strict,
            Reason.IMAGE_NOT_PINNABLE,
            f"{image} is not an Amazon ECR image: pin it by digest in the template, "
            "or use resolveDigest: IfPossible",
        )
    return None


def _most_serious(issues: list[ImageIssue]) -> ImageIssue | None:
    for kind in (IssueKind.FAIL, IssueKind.HOLD, IssueKind.WARN):
        found = [i for i in issues if i.kind is kind]
        if found:
            return ImageIssue(kind, found[0].reason, "; ".join(i.message for i in found))
    return None
