"""EC2 instance type names, and the CPU architecture each runs: the one place that tells a
Graviton (arm64) type from an x86_64 one, for node groups, NAT instances and image builds."""

from __future__ import annotations

import re
from collections.abc import Iterable

INSTANCE_TYPE_PATTERN = re.compile(
    r"^(?P<series>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z-]*)\.(?P<size>[a-z0-9]+)$"
)
# Architectures by their Kubernetes and OCI names (the `kubernetes.io/arch` node label, the
# `linux/<arch>` image platforms), not EC2's (x86_64, arm64).
AMD64 = "amd64"
ARM64 = "arm64"
ARCHITECTURES = (AMD64, ARM64)
# Graviton families carry a `g` among the attributes after the generation (m7g, c6gn, t4g,
# r8gd, im4gn); the first Graviton family, a1, does not.
GRAVITON_WITHOUT_G = frozenset({"a1"})


def known_architectures(values: tuple[str, ...]) -> tuple[str, ...]:
    """The architectures given, sorted and each once; ValueError naming any other name."""
    unknown = [value for value in values if value not in ARCHITECTURES]
    if unknown:
        raise ValueError(f"expected {' or '.join(ARCHITECTURES)}, not {unknown}")
    return tuple(sorted(set(values)))


def architecture(instance_type: str) -> str:
    """`arm64` for a Graviton instance type, `amd64` for any other; ValueError for a name that
    is not an instance type."""
    match = INSTANCE_TYPE_PATTERN.fullmatch(instance_type)
    if not match:
        raise ValueError(f"expected an instance type such as t3.large, not {instance_type!r}")
    family = f"{match['series']}{match['generation']}"
    graviton = "g" in match["attributes"] or family in GRAVITON_WITHOUT_G
    return ARM64 if graviton else AMD64


def by_architecture(instance_types: Iterable[str]) -> dict[str, list[str]]:
    """The instance types grouped by architecture, in the order given."""
    grouped: dict[str, list[str]] = {}
    for instance_type in instance_types:
        grouped.setdefault(architecture(instance_type), []).append(instance_type)
    return grouped


def one_architecture(instance_types: Iterable[str]) -> str:
    """The one architecture of these instance types; ValueError naming the types of each when
    they mix architectures (a node group runs one AMI, built for one architecture)."""
    grouped = by_architecture(instance_types)
    if len(grouped) != 1:
        found = "; ".join(f"{arch}: {types}" for arch, types in sorted(grouped.items()))
        raise ValueError(f"expected instance types of one architecture, got {found or 'none'}")
    return next(iter(grouped))
