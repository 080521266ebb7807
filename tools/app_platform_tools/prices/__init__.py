"""The price table `make cost` reads (`aws.json`), and the lookups into it.

The table is data kept in the repository: every section names its source and the date it was
read, and what is our assumption rather than AWS's price says so. Standard library only, like
`plandiff`, which prints the cost difference on pull requests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("aws.json")


class PriceError(ValueError):
    """A region the table has no prices for."""


@dataclass(frozen=True)
class Prices:
    """The table's prices for one region, its instance type facts and its assumptions."""

    region: str
    as_of: str
    regional: dict[str, Any]
    instance_types: dict[str, dict[str, Any]]
    assumptions: dict[str, Any]

    def assume(self, key: str) -> Any:
        return self.assumptions[key]["value"]

    @property
    def hours(self) -> float:
        return float(self.assume("hours_per_month"))

    def price(self, section: str, key: str) -> float:
        return float(self.regional[section][key])

    def on_demand(self, instance_type: str) -> float | None:
        found = self.regional["ec2"].get(instance_type)
        return None if found is None else float(found)

    def hourly(self, instance_type: str, spot: bool) -> float | None:
        """On-demand or spot USD/hour of a type; None when not in the table."""
        price = self.on_demand(instance_type)
        if price is None or not spot:
            return price
        return price * (1 - self.spot_savings(instance_type))

    def spot_savings(self, instance_type: str) -> float:
        """Spot's savings over on-demand: the Spot Advisor's for the type in this region, else
        the table's flat assumption."""
        found = self.regional.get("spot", {}).get(instance_type)
        return float(self.assume("spot_savings") if found is None else found)

    def vcpu(self, instance_type: str) -> int | None:
        facts = self.instance_types.get(instance_type)
        return None if facts is None else int(facts["vcpu"])

    def vcpu_hour(self, instance_types: Iterable[str], spot: bool) -> float | None:
        """The per-vCPU-hour price Karpenter would pay over these types (the table's quantile)."""
        rates = sorted(
            self.hourly(name, spot) / self.instance_types[name]["vcpu"]  # type: ignore[operator]
            for name in instance_types
            if self.on_demand(name) is not None and name in self.instance_types
        )
        if not rates:
            return None
        # Linear interpolation between the closest ranks (numpy's default quantile).
        position = float(self.assume("nodepool_price_quantile")) * (len(rates) - 1)
        low = math.floor(position)
        high = min(low + 1, len(rates) - 1)
        return rates[low] + (rates[high] - rates[low]) * (position - low)

    def ebs_gb_month(self, volume_type: str) -> float | None:
        found = self.regional["ebs"].get(f"{volume_type}_gb_month")
        return None if found is None else float(found)


@cache
def _table(path: Path = TABLE) -> dict[str, Any]:
    return json.loads(path.read_text())


def for_region(region: str, path: Path = TABLE) -> Prices:
    """The prices of `region`; a region the table lacks is an error naming those it has."""
    table = _table(path)
    if region not in table["regions"]:
        known = ", ".join(sorted(table["regions"]))
        raise PriceError(
            f"no prices for region {region!r} in {path.name} (it has: {known}); add the "
            "region's prices there, each section with its source"
        )
    return Prices(
        region=region,
        as_of=table["as_of"],
        regional=table["regions"][region],
        instance_types=table["instance_types"],
        assumptions=table["assumptions"],
    )


def sources(path: Path = TABLE) -> dict[str, dict[str, Any]]:
    """Each section's date, source URLs and note, for the README and the comment footnote."""
    return _table(path)["sections"]
