"""Config tracking (spec.configTracking): the ConfigMaps and Secrets a pod template
references, what of them is part of the revision, and the immutable copies the pods use.

Pure: the caller hands in the template and what the cluster holds (a content digest per
object); this module says which references are tracked, what the revision's config is,
how the template is rewritten to the copies, and which copies are no longer needed.

    refs = references(template)                 # every ConfigMap/Secret the pods name
    choice = track(refs, found, secrets=...)    # tracked digests, what is missing, refused
    revision = revision(template, choice.config)  # core.revision
    rewrite(template, copies(choice, revision))   # the pods reference <name>-<revision>
    serving(revision, config, found)            # a colour's pods: copies to make again
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

CONFIG_MAP = "ConfigMap"
SECRET = "Secret"  # noqa: S105 - a kind, not a password

MAX_NAME = 253
"""ConfigMap and Secret names are DNS subdomains: at most 253 characters."""
SHORT_HASH = 8
UNTRACKABLE_SECRET_TYPES = frozenset({"kubernetes.io/service-account-token"})
"""Secrets the API server fills itself: a copy would never hold a token."""


@dataclass(frozen=True, order=True)
class Ref:
    """A ConfigMap or Secret the template references by name."""

    kind: str
    name: str

    @property
    def key(self) -> str:
        """How the revision's config names it: `ConfigMap/settings`."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Found:
    """What the cluster holds under a referenced name: its content digest, whether it is
    one of the operator's copies, and (Secrets) its type."""

    digest: str
    copy: bool = False
    type: str = ""


@dataclass(frozen=True)
class Choice:
    """Which references a revision tracks, and why the others are not."""

    config: Mapping[str, str] = field(default_factory=dict)
    """`Kind/name` -> content digest of every tracked object: part of the revision."""
    missing: tuple[Ref, ...] = ()
    """Non-optional references to objects that do not exist: the release waits."""
    untracked_secrets: tuple[Ref, ...] = ()
    """Secrets the app asks to track but the operator may not read: plain references."""

    @property
    def tracked(self) -> tuple[Ref, ...]:
        out = []
        for key in sorted(self.config):
            kind, _, name = key.partition("/")
            out.append(Ref(kind, name))
        return tuple(out)


# ----------------------------------------------------------------------------- references


def _sources(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Every place the pod template names a ConfigMap or Secret: (kind, the dict that names
    it, the key of the name in it). Containers and initContainers (env valueFrom, envFrom),
    volumes (configMap, secret, projected sources)."""
    spec = template.get("spec") or {}
    found: list[tuple[str, Any, str]] = []
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                found.append((CONFIG_MAP, value_from.get("configMapKeyRef"), "name"))
                found.append((SECRET, value_from.get("secretKeyRef"), "name"))
            for env_from in container.get("envFrom") or []:
                found.append((CONFIG_MAP, env_from.get("configMapRef"), "name"))
                found.append((SECRET, env_from.get("secretRef"), "name"))
    for volume in spec.get("volumes") or []:
        found.append((CONFIG_MAP, volume.get("configMap"), "name"))
        found.append((SECRET, volume.get("secret"), "secretName"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            found.append((CONFIG_MAP, source.get("configMap"), "name"))
            found.append((SECRET, source.get("secret"), "name"))
    for kind, source, name_key in found:
        name = source.get(name_key) if isinstance(source, dict) else None
        if isinstance(source, dict) and isinstance(name, str) and name:
            yield kind, source, name_key


def references(template: Mapping[str, Any]) -> dict[Ref, bool]:
    """Every ConfigMap and Secret the pod template references by name -> whether every
    reference to it is `optional: true` (one that is not makes it required)."""
    out: dict[Ref, bool] = {}
    for kind, source, name_key in _sources(template):
        ref = Ref(kind, source[name_key])
        out[ref] = out.get(ref, True) and bool(source.get("optional"))
    return dict(sorted(out.items()))


def track(
    refs: Mapping[Ref, bool],
    found: Mapping[Ref, Found | None],
    *,
    secrets: bool,
    secrets_allowed: bool,
) -> Choice:
    """What a revision tracks. `secrets`: the app asks for Secrets too; `secrets_allowed`:
    the operator's administrator allows it. An optional reference to nothing is left as it
    is (the kubelet starts the pod without it); a reference to one of the operator's own
    copies (already immutable) is not copied again."""
    config: dict[str, str] = {}
    missing: list[Ref] = []
    untracked: list[Ref] = []
    for ref, optional in refs.items():
        if ref.kind == SECRET and not secrets:
            continue
        if ref.kind == SECRET and not secrets_allowed:
            untracked.append(ref)
            continue
        have = found.get(ref)
        if have is None:
            if not optional:
                missing.append(ref)
            continue
        if have.copy or have.type in UNTRACKABLE_SECRET_TYPES:
            continue
        config[ref.key] = have.digest
    return Choice(config=config, missing=tuple(missing), untracked_secrets=tuple(untracked))


# ----------------------------------------------------------------------------- content


def digest(data: Mapping[str, Any] | None, binary_data: Mapping[str, Any] | None = None) -> str:
    """The content of a ConfigMap or Secret (data and binaryData), as a hash: what the
    revision includes, and all the operator keeps in memory of it."""
    canonical = json.dumps(
        {"data": dict(data or {}), "binaryData": dict(binary_data or {})},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def object_digest(obj: Mapping[str, Any]) -> str:
    return digest(obj.get("data"), obj.get("binaryData"))


# ----------------------------------------------------------------------------- copies


def copy_name(name: str, revision: str) -> str:
    """`<name>-<revision>`; a name too long for that keeps its first characters and a hash
    of the whole, `<prefix>-<hash8>-<revision>`, at most 253 characters."""
    plain = f"{name}-{revision}"
    if len(plain) <= MAX_NAME:
        return plain
    short = hashlib.sha256(name.encode()).hexdigest()[:SHORT_HASH]
    keep = MAX_NAME - len(revision) - SHORT_HASH - 2
    prefix = name[:keep].rstrip("-.")
    return f"{prefix}-{short}-{revision}"


def copies(choice: Choice, revision: str) -> dict[Ref, str]:
    """Each tracked object -> the name of its copy for `revision`."""
    return {ref: copy_name(ref.name, revision) for ref in choice.tracked}


def rewrite(template: dict[str, Any], renamed: Mapping[Ref, str]) -> None:
    """Point the template's references (in place) at the copies in `renamed`."""
    for kind, source, name_key in list(_sources(template)):
        new = renamed.get(Ref(kind, source[name_key]))
        if new is not None:
            source[name_key] = new


@dataclass(frozen=True)
class Copy:
    """One of the app's copies, as the cluster holds it."""

    kind: str
    name: str
    revision: str


def stale(copies_: Iterable[Copy], keep: Iterable[str]) -> list[Copy]:
    """The copies of revisions not in `keep` (the colours' revisions, the target, the
    revisions of the release in flight and of the app's history): garbage."""
    kept = set(keep)
    return sorted((c for c in copies_ if c.revision not in kept), key=lambda c: (c.kind, c.name))


@dataclass(frozen=True)
class Serving:
    """The copies the pods of a colour reference, as the cluster holds them."""

    remake: tuple[Ref, ...] = ()
    """Tracked objects whose copy is gone while they still hold the revision's content: the
    copy is made again from them."""
    lost: tuple[Ref, ...] = ()
    """Tracked objects whose copy is gone (or holds other content) while they no longer hold
    the revision's content (or are gone too): the copy cannot be made again."""


def serving(revision: str, config: Mapping[str, str], found: Mapping[Ref, Found]) -> Serving:
    """For a colour whose pods run `revision`, made with `config` (`Kind/name` -> digest, the
    Deployment's annotation): which of its copies to make again, which are lost. `found`:
    the objects and copies the cluster holds, by kind and name (a copy is found by its name,
    whatever its labels say)."""
    remake: list[Ref] = []
    lost: list[Ref] = []
    for key, want in sorted(config.items()):
        kind, _, name = key.partition("/")
        have = found.get(Ref(kind, copy_name(name, revision)))
        if have is not None and have.digest == want:
            continue
        source = found.get(Ref(kind, name))
        if have is None and source is not None and source.digest == want:
            remake.append(Ref(kind, name))
        else:
            lost.append(Ref(kind, name))
    return Serving(remake=tuple(remake), lost=tuple(lost))
