"""Table tests of the pure image-reference helpers (bluegreen.core.images)."""

from __future__ import annotations

import pytest

from bluegreen.core.images import (
    EcrRef,
    Resolution,
    ResolutionOutcome,
    local_resolution,
    parse_ecr,
    pinned,
    pinned_digest,
)

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
CN_HOST = f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn"
DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "f" * 64


def ref(
    image: str,
    repository: str,
    tag: str | None,
    digest: str | None = None,
    *,
    region: str = "us-east-1",
    registry_id: str = ACCOUNT,
) -> EcrRef:
    return EcrRef(registry_id, region, repository, tag, digest, image)


GOOD = [
    pytest.param(f"{HOST}/shop:v9", ref(f"{HOST}/shop:v9", "shop", "v9"), id="tag"),
    pytest.param(f"{HOST}/shop", ref(f"{HOST}/shop", "shop", "latest"), id="no-tag-means-latest"),
    pytest.param(
        f"{HOST}/team/web/shop:1.2.3-rc.1",
        ref(f"{HOST}/team/web/shop:1.2.3-rc.1", "team/web/shop", "1.2.3-rc.1"),
        id="nested-repository",
    ),
    pytest.param(
        f"{HOST}/my_team/shop-api.v2:Release_7",
        ref(f"{HOST}/my_team/shop-api.v2:Release_7", "my_team/shop-api.v2", "Release_7"),
        id="separators-and-upper-case-tag",
    ),
    pytest.param(
        f"{HOST}/shop@{DIGEST}", ref(f"{HOST}/shop@{DIGEST}", "shop", None, DIGEST), id="digest"
    ),
    pytest.param(
        f"{HOST}/team/shop:v9@{DIGEST}",
        ref(f"{HOST}/team/shop:v9@{DIGEST}", "team/shop", "v9", DIGEST),
        id="tag-and-digest",
    ),
    pytest.param(
        f"{CN_HOST}/shop:v1",
        ref(f"{CN_HOST}/shop:v1", "shop", "v1", region="cn-north-1"),
        id="china",
    ),
    pytest.param(
        "000000000001.dkr.ecr.us-gov-west-1.amazonaws.com/a/b:c",
        ref(
            "000000000001.dkr.ecr.us-gov-west-1.amazonaws.com/a/b:c",
            "a/b",
            "c",
            region="us-gov-west-1",
            registry_id="000000000001",
        ),
        id="govcloud",
    ),
]


@pytest.mark.parametrize(("image", "expected"), GOOD)
def test_parse_ecr_splits_ecr_references(image: str, expected: EcrRef) -> None:
    assert parse_ecr(image) == expected


@pytest.mark.parametrize(
    "image",
    [
        pytest.param("nginx", id="docker-hub-short"),
        pytest.param("nginx:1.27", id="docker-hub-tag"),
        pytest.param("docker.io/library/nginx:1.27", id="docker-hub"),
        pytest.param("ghcr.io/acme/shop:v1", id="ghcr"),
        pytest.param("registry.example/team/shop:v1", id="other-registry"),
        pytest.param("public.ecr.aws/acme/shop:v1", id="ecr-public"),
        pytest.param("localhost:5000/shop:v1", id="registry-with-port"),
        pytest.param("12345678901.dkr.ecr.us-east-1.amazonaws.com/shop:v1", id="11-digit-account"),
        pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.org/shop:v1", id="wrong-domain"),
        pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.evil.io/shop", id="suffix"),
        pytest.param(f"{ACCOUNT}.dkr.ecr.useast1.amazonaws.com/shop", id="bad-region"),
        pytest.param(f"{HOST}", id="no-repository"),
        pytest.param(f"{HOST}/", id="empty-repository"),
        pytest.param(f"{HOST}/Shop:v1", id="upper-case-repository"),
        pytest.param(f"{HOST}/team//shop:v1", id="empty-path-component"),
        pytest.param(f"{HOST}/shop-:v1", id="trailing-separator"),
        pytest.param(f"{HOST}/shop:", id="empty-tag"),
        pytest.param(f"{HOST}/shop:.v1", id="tag-starting-with-dot"),
        pytest.param(f"{HOST}/shop:{'t' * 129}", id="tag-too-long"),
        pytest.param(f"{HOST}/{'r' * 257}:v1", id="repository-too-long"),
        pytest.param(f"{HOST}/shop@sha256:abc", id="short-digest"),
        pytest.param(f"{HOST}/shop@sha256:{'A' * 64}", id="upper-case-digest"),
        pytest.param(f"{HOST}/shop@sha512:{'a' * 128}", id="sha512"),
        pytest.param(f" {HOST}/shop:v1", id="leading-space"),
        pytest.param(f"{HOST}/shop:v1\n", id="trailing-newline"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_ecr_rejects_everything_else(image: str) -> None:
    assert parse_ecr(image) is None


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{HOST}/shop:v9", f"{HOST}/shop@{DIGEST}"),
        (f"{HOST}/shop", f"{HOST}/shop@{DIGEST}"),
        (f"{HOST}/team/web/shop:v1", f"{HOST}/team/web/shop@{DIGEST}"),
        (f"{HOST}/shop:v9@{OTHER_DIGEST}", f"{HOST}/shop@{DIGEST}"),
        (f"{CN_HOST}/shop:v1", f"{CN_HOST}/shop@{DIGEST}"),
    ],
)
def test_pinned_names_the_image_by_digest_alone(image: str, expected: str) -> None:
    parsed = parse_ecr(image)
    assert parsed is not None
    assert pinned(parsed, DIGEST) == expected
    assert parse_ecr(expected) == ref(
        expected, parsed.repository, None, DIGEST, region=parsed.region
    )


@pytest.mark.parametrize("digest", ["", "sha256:abc", "sha512:" + "a" * 64, "a" * 64])
def test_pinned_refuses_what_is_not_a_digest(digest: str) -> None:
    parsed = parse_ecr(f"{HOST}/shop:v1")
    assert parsed is not None
    with pytest.raises(ValueError, match="not a sha256 digest"):
        pinned(parsed, digest)


@pytest.mark.parametrize(
    ("image", "digest"),
    [
        (f"{HOST}/shop@{DIGEST}", DIGEST),
        (f"{HOST}/shop:v1@{DIGEST}", DIGEST),
        (f"docker.io/library/nginx:1.27@{DIGEST}", DIGEST),
        (f"nginx@{DIGEST}", DIGEST),
        (f"{HOST}/shop:v1", None),
        ("nginx:1.27", None),
        (f"nginx@{DIGEST[:-1]}", None),
        (f"nginx@{DIGEST}\n", None),
    ],
)
def test_pinned_digest_of_any_registry(image: str, digest: str | None) -> None:
    assert pinned_digest(image) == digest


@pytest.mark.parametrize(
    ("image", "outcome", "digest", "message"),
    [
        (f"{HOST}/shop:v1", None, None, None),
        (f"{HOST}/shop", None, None, None),
        (
            f"{HOST}/shop@{DIGEST}",
            ResolutionOutcome.ALREADY_PINNED,
            DIGEST,
            f"already pinned to {DIGEST}",
        ),
        (
            f"ghcr.io/a/b@{DIGEST}",
            ResolutionOutcome.ALREADY_PINNED,
            DIGEST,
            f"already pinned to {DIGEST}",
        ),
        (
            "ghcr.io/a/b:v1",
            ResolutionOutcome.NOT_ECR,
            None,
            "ghcr.io/a/b:v1 is not an Amazon ECR image: no digest to look up",
        ),
        (
            f"{HOST}/Shop:v1",
            ResolutionOutcome.NOT_ECR,
            None,
            f"{HOST}/Shop:v1 names an ECR registry but is not a valid image reference",
        ),
    ],
)
def test_local_resolution_answers_without_a_registry(
    image: str, outcome: ResolutionOutcome | None, digest: str | None, message: str | None
) -> None:
    expected = None if outcome is None else Resolution(image, digest, outcome, message or "")
    assert local_resolution(image) == expected


@pytest.mark.parametrize(
    ("resolution", "expected"),
    [
        (
            Resolution(f"{HOST}/shop:v1", DIGEST, ResolutionOutcome.RESOLVED, ""),
            f"{HOST}/shop@{DIGEST}",
        ),
        (
            Resolution(f"{HOST}/shop@{DIGEST}", DIGEST, ResolutionOutcome.ALREADY_PINNED, ""),
            f"{HOST}/shop@{DIGEST}",
        ),
        (Resolution(f"{HOST}/shop:v1", None, ResolutionOutcome.NOT_FOUND, ""), None),
        (Resolution(f"{HOST}/shop:v1", None, ResolutionOutcome.UNAVAILABLE, ""), None),
        (Resolution("nginx:1.27", None, ResolutionOutcome.NOT_ECR, ""), None),
    ],
)
def test_pinned_image_of_a_resolution(resolution: Resolution, expected: str | None) -> None:
    assert resolution.pinned_image == expected
