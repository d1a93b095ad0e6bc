"""The ECR adapter (bluegreen.adapters.registry.EcrResolver) with the real boto3 client against moto's
real server mode on loopback; faults come from loopback stand-ins (tests/support/aws.py): a
proxy in front of moto that answers the first requests with an AWS error, a socket that
never answers, a closed port, and an environment without credentials.

Requests are counted by the proxy, as HTTP requests on the wire (retries included).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bluegreen.adapters.registry import MAX_ATTEMPTS, EcrResolver
from bluegreen.core.images import Resolution, ResolutionOutcome
from tests.support.aws import FaultProxy, isolated_aws_env, silent_server
from tests.support.moto import ACCOUNT, REGION, create_repository, push_image, run_moto_server
from tests.support.process import LOOPBACK, free_port

pytestmark = pytest.mark.timeout(60)

REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
TIMEOUT = 1.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_aws_env(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def repo(moto: str) -> str:
    """A fresh repository with a nested path, so tests never see each other's images."""
    name = f"team/shop-{uuid.uuid4().hex[:8]}"
    create_repository(moto, name)
    return name


def resolver(
    endpoint: str,
    clock: FakeClock | None = None,
    ttl_seconds: float = 60,
    timeout_seconds: float = TIMEOUT,
) -> EcrResolver:
    return EcrResolver(ttl_seconds, timeout_seconds, endpoint, clock=clock or FakeClock())


def test_a_tag_resolves_to_the_digest_that_was_pushed(moto: str, repo: str) -> None:
    digest = push_image(moto, repo, "v1")
    image = f"{REGISTRY}/{repo}:v1"

    result = resolver(moto).resolve(image)

    assert result == Resolution(image, digest, ResolutionOutcome.RESOLVED, result.message)
    assert result.pinned_image == f"{REGISTRY}/{repo}@{digest}"


def test_a_reference_without_tag_means_latest(moto: str, repo: str) -> None:
    digest = push_image(moto, repo, "latest")
    assert resolver(moto).resolve(f"{REGISTRY}/{repo}").digest == digest


def test_a_missing_tag_is_not_found(moto: str, repo: str) -> None:
    push_image(moto, repo, "v1")
    result = resolver(moto).resolve(f"{REGISTRY}/{repo}:v9")
    assert result.outcome is ResolutionOutcome.NOT_FOUND
    assert result.digest is None
    assert result.message == f"tag v9 not found in repository {repo} ({ACCOUNT}, {REGION})"


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(f"{REGISTRY}/team/absent:v1", id="no-such-repository"),
        pytest.param(
            f"210987654321.dkr.ecr.{REGION}.amazonaws.com/{{repo}}:v1", id="other-account"
        ),
        pytest.param(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/{{repo}}:v1", id="other-region"),
    ],
)
def test_a_missing_repository_is_not_found(moto: str, repo: str, image: str) -> None:
    push_image(moto, repo, "v1")
    result = resolver(moto).resolve(image.format(repo=repo))
    assert result.outcome is ResolutionOutcome.NOT_FOUND
    assert result.message.startswith("repository ")
    assert "not found in registry" in result.message


@pytest.mark.parametrize(
    ("image", "outcome"),
    [
        (f"{REGISTRY}/shop@sha256:{'a' * 64}", ResolutionOutcome.ALREADY_PINNED),
        (f"{REGISTRY}/shop:v1@sha256:{'b' * 64}", ResolutionOutcome.ALREADY_PINNED),
        (f"docker.io/library/nginx@sha256:{'c' * 64}", ResolutionOutcome.ALREADY_PINNED),
        ("nginx:1.27", ResolutionOutcome.NOT_ECR),
        ("ghcr.io/acme/shop:v1", ResolutionOutcome.NOT_ECR),
        ("registry.example/team/shop:v1", ResolutionOutcome.NOT_ECR),
        (f"{REGISTRY}/Shop:v1", ResolutionOutcome.NOT_ECR),
    ],
)
def test_pinned_and_foreign_images_need_no_request(
    moto: str, image: str, outcome: ResolutionOutcome
) -> None:
    with FaultProxy(moto) as proxy:
        ecr = resolver(proxy.url)
        result = ecr.resolve(image)
    assert result.outcome is outcome
    assert proxy.requests == 0
    assert ecr.calls == 0
    if outcome is ResolutionOutcome.ALREADY_PINNED:
        assert result.digest == image.rsplit("@", 1)[1]
        assert result.pinned_image == image


def test_answers_are_cached_for_the_ttl(moto: str, repo: str) -> None:
    digest = push_image(moto, repo, "v1")
    clock = FakeClock()
    with FaultProxy(moto) as proxy:
        ecr = resolver(proxy.url, clock, ttl_seconds=60)
        found, missing = f"{REGISTRY}/{repo}:v1", f"{REGISTRY}/{repo}:v9"
        assert ecr.resolve(found).digest == digest
        assert ecr.resolve(missing).outcome is ResolutionOutcome.NOT_FOUND
        assert proxy.requests == 2

        clock.advance(59)
        assert ecr.resolve(found).digest == digest
        assert ecr.resolve(missing).outcome is ResolutionOutcome.NOT_FOUND
        # The same image written another way shares the entry, and gets its own spelling back.
        other_spelling = f"{REGISTRY}/{repo}:v1"
        assert ecr.resolve(other_spelling).image == other_spelling
        assert proxy.requests == 2

        clock.advance(1)
        assert ecr.resolve(found).digest == digest
        assert ecr.resolve(missing).outcome is ResolutionOutcome.NOT_FOUND
        assert proxy.requests == 4


def test_a_moved_tag_gives_the_new_digest_after_the_ttl(moto: str, repo: str) -> None:
    clock = FakeClock()
    ecr = resolver(moto, clock, ttl_seconds=60)
    image = f"{REGISTRY}/{repo}:v1"
    first = push_image(moto, repo, "v1", content="build 1")
    assert ecr.resolve(image).digest == first

    second = push_image(moto, repo, "v1", content="build 2")  # moto moves the tag
    assert second != first
    assert ecr.resolve(image).digest == first  # still cached
    clock.advance(60)
    assert ecr.resolve(image).digest == second


def test_throttled_on_every_attempt_is_unavailable_and_not_cached(moto: str, repo: str) -> None:
    digest = push_image(moto, repo, "v1")
    image = f"{REGISTRY}/{repo}:v1"
    with FaultProxy(moto, fail_first=MAX_ATTEMPTS) as proxy:
        ecr = resolver(proxy.url)
        result = ecr.resolve(image)
        assert result.outcome is ResolutionOutcome.UNAVAILABLE
        assert "throttled" in result.message
        assert "Rate exceeded" in result.message
        assert proxy.requests == MAX_ATTEMPTS

        assert ecr.resolve(image).digest == digest  # asked again: UNAVAILABLE is not cached
        assert proxy.requests == MAX_ATTEMPTS + 1


def test_throttling_within_the_retry_budget_still_resolves(moto: str, repo: str) -> None:
    digest = push_image(moto, repo, "v1")
    with FaultProxy(moto, fail_first=MAX_ATTEMPTS - 1) as proxy:
        result = resolver(proxy.url).resolve(f"{REGISTRY}/{repo}:v1")
    assert result.outcome is ResolutionOutcome.RESOLVED
    assert result.digest == digest
    assert proxy.requests == MAX_ATTEMPTS


def test_access_denied_is_unavailable(moto: str, repo: str) -> None:
    push_image(moto, repo, "v1")
    with FaultProxy(
        moto, fail_first=1, error_type="AccessDeniedException", message="not authorized"
    ) as proxy:
        result = resolver(proxy.url).resolve(f"{REGISTRY}/{repo}:v1")
    assert result.outcome is ResolutionOutcome.UNAVAILABLE
    assert result.message == "access denied by ECR: not authorized"
    assert proxy.requests == 1  # not retried


def test_a_server_error_is_unavailable(moto: str, repo: str) -> None:
    push_image(moto, repo, "v1")
    with FaultProxy(
        moto, fail_first=MAX_ATTEMPTS, error_type="ServerException", message="oops", status=500
    ) as proxy:
        result = resolver(proxy.url).resolve(f"{REGISTRY}/{repo}:v1")
    assert result.outcome is ResolutionOutcome.UNAVAILABLE
    assert "ServerException" in result.message
    assert proxy.requests == MAX_ATTEMPTS


def test_a_registry_that_never_answers_times_out(repo: str) -> None:
    with silent_server() as url:
        ecr = resolver(url, timeout_seconds=TIMEOUT)
        started = time.monotonic()
        result = ecr.resolve(f"{REGISTRY}/{repo}:v1")
        elapsed = time.monotonic() - started
    assert result.outcome is ResolutionOutcome.UNAVAILABLE
    assert result.message == "ECR timed out after 1s"
    assert MAX_ATTEMPTS * TIMEOUT <= elapsed < 4 * TIMEOUT


def test_an_unreachable_endpoint_is_unavailable() -> None:
    url = f"http://{LOOPBACK}:{free_port()}"  # nothing listens there
    result = resolver(url).resolve(f"{REGISTRY}/shop:v1")
    assert result.outcome is ResolutionOutcome.UNAVAILABLE
    assert result.message.startswith("cannot reach ECR")


def test_without_credentials_it_is_unavailable_until_they_appear(
    moto: str, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = push_image(moto, repo, "v1")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with FaultProxy(moto) as proxy:
        ecr = resolver(proxy.url)
        result = ecr.resolve(f"{REGISTRY}/{repo}:v1")
        assert result.outcome is ResolutionOutcome.UNAVAILABLE
        assert result.message == "no AWS credentials found"
        assert proxy.requests == 0

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        assert ecr.resolve(f"{REGISTRY}/{repo}:v1").digest == digest


def test_the_endpoint_can_come_from_botos_environment(
    moto: str, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = push_image(moto, repo, "v1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto)
    result = EcrResolver(clock=FakeClock()).resolve(f"{REGISTRY}/{repo}:v1")
    assert result.digest == digest


def test_worker_threads_can_share_one_resolver(moto: str, repo: str) -> None:
    digests = {tag: push_image(moto, repo, tag) for tag in ("v1", "v2", "v3")}
    ecr = resolver(moto)
    tags = list(digests) * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda tag: ecr.resolve(f"{REGISTRY}/{repo}:{tag}"), tags))
    assert [r.digest for r in results] == [digests[tag] for tag in tags]
