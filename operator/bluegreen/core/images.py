"""Container image references and digest resolution, without I/O (part of the pure core).

Invariant 7 (docs/architecture.md): every release pins the pod template to something immutable.
For Amazon ECR images the operator can ask the registry which digest a tag points at now and
deploy `<registry>/<repository>@sha256:...` instead of the tag (`spec.image.resolveDigest`).

    ref = parse_ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/shop:v9")
    ref.repository, ref.tag                   # ("team/shop", "v9")
    pinned(ref, "sha256:" + "ab" * 32)        # "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/shop@sha256:abab..."
    parse_ecr("ghcr.io/acme/shop:v9")         # None: not an ECR image

The registry lookup itself is behind the `ImageResolver` port (`bluegreen.core.ports`) (the boto3 adapter lives in
`bluegreen.adapters.registry`); its answer is a `Resolution` with a five-valued `outcome`:

    RESOLVED        the tag points at `digest` now
    ALREADY_PINNED  the reference already carries a digest (any registry): nothing to ask
    NOT_ECR         not an Amazon ECR reference: there is no registry to ask
    NOT_FOUND       the registry answered definitely: no such tag or no such repository
    UNAVAILABLE     no answer this time (throttled, timed out, no credentials, access
                    denied, ...): a temporary or environmental failure; ask again later
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

DEFAULT_TAG = "latest"

_DIGEST = r"sha256:[0-9a-f]{64}"
DIGEST_PATTERN = re.compile(_DIGEST)
# ECR's own repository name rule (CreateRepository), path components separated by "/".
_REPOSITORY = r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
# The OCI distribution spec's tag grammar.
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_ECR_HOST = r"(?P<registry_id>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(?:\.cn)?"
_ECR_REFERENCE = re.compile(
    rf"(?P<registry>{_ECR_HOST})/(?P<repository>{_REPOSITORY})"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_ECR_HOST_ONLY = re.compile(rf"^{_ECR_HOST}/")
# Any reference that ends in a sha256 digest, whatever its registry.
_PINNED = re.compile(rf"[^@\s]+@(?P<digest>{_DIGEST})")
_MAX_REPOSITORY_LENGTH = 256


@dataclass(frozen=True)
class EcrRef:
    """An Amazon ECR image reference, split into the parts the ECR API asks for."""

    registry_id: str
    """The 12-digit AWS account id of the registry."""
    region: str
    repository: str
    """May contain slashes: `team/shop`."""
    tag: str | None
    """`latest` when the reference has neither tag nor digest; None for `repo@sha256:...`."""
    digest: str | None
    """The digest the reference already pins (`sha256:<64 hex>`), if any."""
    original: str

    @property
    def registry(self) -> str:
        """The registry host exactly as written (`...amazonaws.com` or `...amazonaws.com.cn`)."""
        return self.original.split("/", 1)[0]


def parse_ecr(image: str) -> EcrRef | None:
    """The parts of `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repo>[:tag][@sha256:...]`,
    or None for anything else (Docker Hub, ghcr.io, other registries, malformed references)."""
    match = _ECR_REFERENCE.fullmatch(image)
    if match is None or len(match["repository"]) > _MAX_REPOSITORY_LENGTH:
        return None
    tag, digest = match["tag"], match["digest"]
    return EcrRef(
        registry_id=match["registry_id"],
        region=match["region"],
        repository=match["repository"],
        tag=tag if tag is not None or digest is not None else DEFAULT_TAG,
        digest=digest,
        original=image,
    )


def pinned(ref: EcrRef, digest: str) -> str:
    """`<registry>/<repository>@<digest>`: the reference by digest alone (the tag is dropped)."""
    if DIGEST_PATTERN.fullmatch(digest) is None:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return f"{ref.registry}/{ref.repository}@{digest}"


def pinned_digest(image: str) -> str | None:
    """The digest an image reference of any registry already pins (`...@sha256:<64 hex>`)."""
    match = _PINNED.fullmatch(image)
    return match["digest"] if match is not None else None


class ResolutionOutcome(enum.StrEnum):
    RESOLVED = "Resolved"
    ALREADY_PINNED = "AlreadyPinned"
    NOT_ECR = "NotEcr"
    NOT_FOUND = "NotFound"
    UNAVAILABLE = "Unavailable"


@dataclass(frozen=True)
class Resolution:
    """The answer to "which digest does this image reference mean now?"."""

    image: str
    """The reference as asked (the pod template's image)."""
    digest: str | None
    """Set for RESOLVED and ALREADY_PINNED."""
    outcome: ResolutionOutcome
    message: str
    """For people: `tag v9 not found in repository shop (123456789012, us-east-1)`."""

    @property
    def pinned_image(self) -> str | None:
        """The immutable reference to deploy: the original when it is already pinned, the
        registry/repository@digest when resolved, else None."""
        if self.outcome is ResolutionOutcome.ALREADY_PINNED:
            return self.image
        if self.outcome is ResolutionOutcome.RESOLVED and self.digest is not None:
            ref = parse_ecr(self.image)
            return pinned(ref, self.digest) if ref is not None else None
        return None


def local_resolution(image: str) -> Resolution | None:
    """The answers that need no registry: ALREADY_PINNED (for any registry) and NOT_ECR.
    None when the registry must be asked (an ECR reference by tag)."""
    digest = pinned_digest(image)
    if digest is not None:
        return Resolution(
            image, digest, ResolutionOutcome.ALREADY_PINNED, f"already pinned to {digest}"
        )
    if parse_ecr(image) is not None:
        return None
    if _ECR_HOST_ONLY.match(image):
        message = f"{image} names an ECR registry but is not a valid image reference"
    else:
        message = f"{image} is not an Amazon ECR image: no digest to look up"
    return Resolution(image, None, ResolutionOutcome.NOT_ECR, message)


def resolved(ref: EcrRef, digest: str) -> Resolution:
    return Resolution(
        ref.original, digest, ResolutionOutcome.RESOLVED, f"tag {ref.tag} {where(ref)} is {digest}"
    )


def where(ref: EcrRef) -> str:
    """`in repository shop (123456789012, us-east-1)`: for messages."""
    return f"in repository {ref.repository} ({ref.registry_id}, {ref.region})"
