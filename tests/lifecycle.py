"""Pulumi's create and delete order, computed from the recording of a whole program.

Pulumi creates a resource once everything it depends on exists, and deletes it only once
everything that depends on it is gone; unrelated resources go in parallel, in an order that is
the engine's choice (today it deletes in layers and waits between them: `ScheduleDeletes` in
pulumi/pulumi pkg/resource/deploy/step_generator.go). So "A is deleted before B" holds in every
order Pulumi may pick exactly when A depends on B, directly or through other resources: that is
what `Graph.deleted_before` checks. The waves show one such order, each resource as early as its
edges allow.

The edges are those the engine reads from a resource's state (`DependenciesOf` in
pkg/resource/graph/dependency_graph.go): its dependencies (explicit and through inputs), its
parent, its provider and its deletedWith; a dependency on a component (other than the parent)
also means one on that component's children registered before the resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from app_platform_tools.offline import Recording, Resource


def label(resource: Resource) -> str:
    """`Kind name`, e.g. `NatGateway platform-dev-nat-us-east-1a`."""
    return f"{resource.type.rsplit(':', 1)[-1]} {resource.name}"


@dataclass
class Graph:
    resources: dict[str, Resource]
    # URN -> URNs it depends on: created after them, deleted before them.
    edges: dict[str, frozenset[str]]
    _needs: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, recording: Recording) -> Graph:
        resources = {r.urn: r for r in recording.resources}
        order = {urn: index for index, urn in enumerate(resources)}
        children: dict[str, list[str]] = {}
        for r in recording.resources:
            children.setdefault(r.parent, []).append(r.urn)

        def descendants(urn: str) -> list[str]:
            found = []
            for child in children.get(urn, []):
                found += [child, *descendants(child)]
            return found

        edges: dict[str, frozenset[str]] = {}
        for r in recording.resources:
            direct = {*r.dependencies, r.provider, r.deleted_with} & resources.keys()
            for dep in list(direct):
                if not resources[dep].custom:
                    direct |= {c for c in descendants(dep) if order[c] < order[r.urn]}
            # The parent counts, not its other children.
            edges[r.urn] = frozenset(direct | ({r.parent} & resources.keys()))
        return cls(resources, edges)

    def needs(self, urn: str) -> frozenset[str]:
        """Everything `urn` depends on, directly or not."""
        if urn not in self._needs:
            found: set[str] = set()
            for dep in self.edges[urn]:
                found |= {dep, *self.needs(dep)}
            self._needs[urn] = frozenset(found)
        return self._needs[urn]

    def deleted_before(self, earlier: Resource, later: Resource) -> bool:
        """Whether `earlier` is gone before `later`'s deletion starts, in every order Pulumi may
        pick (and so, created after it)."""
        return later.urn in self.needs(earlier.urn)

    @cached_property
    def create_wave(self) -> dict[str, int]:
        """Resource -> the wave it is created in (1: depends on nothing), as early as possible."""
        wave: dict[str, int] = {}
        for urn in self.resources:  # registration order: dependencies come first
            wave[urn] = 1 + max((wave[dep] for dep in self.edges[urn]), default=0)
        return wave

    @cached_property
    def delete_wave(self) -> dict[str, int]:
        """Resource -> the wave it is deleted in (1: nothing depends on it), as early as
        possible."""
        wave: dict[str, int] = {}
        dependents: dict[str, list[str]] = {urn: [] for urn in self.resources}
        for urn, deps in self.edges.items():
            for dep in deps:
                dependents[dep].append(urn)
        for urn in reversed(list(self.resources)):
            wave[urn] = 1 + max((wave[d] for d in dependents[urn]), default=0)
        return wave

    def waves(self, wave: dict[str, int]) -> list[list[Resource]]:
        grouped: dict[int, list[Resource]] = {}
        for urn, number in wave.items():
            grouped.setdefault(number, []).append(self.resources[urn])
        return [grouped[number] for number in sorted(grouped)]

    def not_deleted_before(
        self, rule: str, earlier: Iterable[Resource], later: Iterable[Resource]
    ) -> list[str]:
        """A message for each `earlier` resource not deleted strictly before every `later` one,
        naming those it is not ordered with and the delete waves each would otherwise go in."""
        later = list(later)
        messages = []
        for first in earlier:
            unordered = [
                f"{label(then)} (wave {self.delete_wave[then.urn]})"
                for then in later
                if then.urn != first.urn and not self.deleted_before(first, then)
            ]
            if unordered:
                messages.append(
                    f"{rule}: {label(first)} (delete wave {self.delete_wave[first.urn]}) is "
                    f"not deleted before {', '.join(unordered)}"
                )
        return messages
