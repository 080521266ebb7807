"""Refresh the EC2 on-demand section of `aws.json` from a karpenter-provider-aws snapshot.

    git -C karpenter-provider-aws show HEAD:pkg/providers/pricing/zz_generated.pricing_aws.go \
      | python -m app_platform_tools.prices.ec2_table --as-of 2026-07-20 [--write]

prints the EC2 part as JSON, or with `--write` puts it into `aws.json` (the instance types, each
region's `ec2` prices it has, and the section's date); the other sections are kept.

Karpenter's repository commits the on-demand Linux price of every instance type it knows, per
region, as generated data (a dated comment heads the file). Only the prices are read; the vCPU
count and the architecture come from the instance type's name, which AWS's naming rules fix for
the families kept here (c, m, r of generation 5 and later, and the t3/t3a/t4g burstables):
`medium` is 1 vCPU (2 for burstables), `large` 2, `xlarge` 4, `Nxlarge` 4N; a `g` among the
family's attribute letters means Graviton (arm64). Other families and `metal` sizes are left
out, their vCPU counts not being derivable from the name.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

# `"m6i.large": 0.096000` entries, under a `"us-east-1": {` region line.
_REGION = re.compile(r'^\s*"([a-z]{2}(?:-[a-z]+)+-\d)": \{')
_PRICE = re.compile(r'"([a-z0-9-]+\.[a-z0-9]+)": ([0-9.]+)')
_TYPE = re.compile(
    r"^(?P<category>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z-]*)\.(?P<size>.+)$"
)
CATEGORIES = {"c", "m", "r"}
MIN_GENERATION = 5
BURSTABLE_FAMILIES = {"t3", "t3a", "t4g"}
BURSTABLE_SMALL_VCPU = 2  # t3/t4g nano to large all have 2 vCPUs
_SIZE = re.compile(r"^(?P<times>\d*)xlarge$")


def vcpu(category: str, size: str) -> int | None:
    if size in {"nano", "micro", "small"}:
        return BURSTABLE_SMALL_VCPU if category == "t" else None
    if size == "medium":
        return BURSTABLE_SMALL_VCPU if category == "t" else 1
    if size == "large":
        return 2
    match = _SIZE.match(size)
    return 4 * int(match["times"] or 1) if match else None


def describe(instance_type: str) -> dict[str, Any] | None:
    """vCPU, architecture, category and generation of a kept instance type, else None."""
    match = _TYPE.match(instance_type)
    if not match:
        return None
    category, generation = match["category"], int(match["generation"])
    family = instance_type.split(".")[0]
    kept = (category in CATEGORIES and generation >= MIN_GENERATION) or (
        family in BURSTABLE_FAMILIES
    )
    count = vcpu(category, match["size"]) if kept else None
    if count is None:
        return None
    arch = "arm64" if "g" in match["attributes"] else "amd64"
    return {"vcpu": count, "arch": arch, "category": category, "generation": generation}


def parse(go_source: str) -> dict[str, dict[str, float]]:
    """{region: {instance type: USD per hour}} from the generated Go file."""
    prices: dict[str, dict[str, float]] = {}
    region = None
    for line in go_source.splitlines():
        if found := _REGION.match(line):
            region = found[1]
            prices[region] = {}
        elif region:
            for name, price in _PRICE.findall(line):
                prices[region][name] = float(price)
    return prices


def table(go_source: str, as_of: str) -> dict[str, Any]:
    instance_types: dict[str, Any] = {}
    regions: dict[str, dict[str, float]] = {}
    for region, prices in parse(go_source).items():
        kept = {name: price for name, price in sorted(prices.items()) if describe(name)}
        regions[region] = kept
        instance_types.update({name: describe(name) for name in kept})
    return {
        "as_of": as_of,
        "instance_types": dict(sorted(instance_types.items())),
        "regions": regions,
    }


def write(ec2: dict[str, Any], path: Path) -> None:
    """Put the EC2 part into the price table at `path`, keeping everything else."""
    prices = json.loads(path.read_text())
    prices["instance_types"] = ec2["instance_types"]
    prices["sections"]["ec2"]["as_of"] = ec2["as_of"]
    for region, on_demand in ec2["regions"].items():
        if region in prices["regions"]:
            prices["regions"][region]["ec2"] = on_demand
    path.write_text(json.dumps(prices, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", required=True, help="the snapshot's date (its header says it)")
    parser.add_argument("--write", action="store_true", help="update aws.json beside this file")
    args = parser.parse_args(argv)
    ec2 = table(sys.stdin.read(), args.as_of)
    if args.write:
        write(ec2, Path(__file__).with_name("aws.json"))
        return 0
    json.dump(ec2, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
