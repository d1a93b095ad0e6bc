"""The revision of a pod template: a short, stable hash of exactly what would run.

Two templates that serialise to the same JSON have the same revision; any change to the
template (an image tag, an env var, a label) gives a new one. Replicas are not part of it,
so a replicas-only change starts no release. With config tracking, the content of the
ConfigMaps (and Secrets) the template references is part of it too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

REVISION_LENGTH = 10


def revision(
    template: dict[str, Any],
    config: Mapping[str, str] | None = None,
    anti_affinity: Mapping[str, Any] | None = None,
) -> str:
    """`config`: the content digests of the ConfigMaps and Secrets the app tracks
    (spec.configTracking), by `Kind/name`; `anti_affinity`: the app's strategy.antiAffinity,
    which the colours' pod templates carry too. Neither: the template alone, as before."""
    hashed: Mapping[str, Any] = template
    if config or anti_affinity is not None:
        hashed = {"template": template}
        if config:
            hashed["config"] = dict(config)
        if anti_affinity is not None:
            hashed["antiAffinity"] = dict(anti_affinity)
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]


def image_tag(image: str) -> str:
    """`repo/name:tag` -> `tag`; a digest reference -> the digest's first characters; none -> ''."""
    if "@" in image:
        return image.split("@", 1)[1].removeprefix("sha256:")[:12]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""
