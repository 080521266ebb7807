"""Refresh the spot section of `aws.json` from a copy of the EC2 Spot Instance Advisor's data.

    python -m app_platform_tools.prices.spot_advisor --as-of 2025-06-28 [--write] \
      < spot-advisor-data.json

prints, per region the table has, each known instance type's spot savings over on-demand (a
fraction), or with `--write` puts them into `aws.json` as `regions.<region>.spot`.

The Advisor (https://aws.amazon.com/ec2/spot/instance-advisor/) publishes, per region and
operating system, every instance type's average savings of spot over on-demand (`s`, a whole
percentage) and its interruption frequency band (`r`), as one JSON document
(`spot_advisor.<region>.Linux.<type>`). Only the Linux savings are read. A type the Advisor does
not list keeps the table's flat `spot_savings` assumption.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("aws.json")
SOURCE = "https://aws.amazon.com/ec2/spot/instance-advisor/"


def savings(advisor: dict[str, Any], prices: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{region: {instance type: savings fraction}} for the table's regions and instance types."""
    known = prices["instance_types"]
    found: dict[str, dict[str, float]] = {}
    for region in prices["regions"]:
        linux = advisor.get("spot_advisor", {}).get(region, {}).get("Linux", {})
        found[region] = {
            name: round(facts["s"] / 100, 2)
            for name, facts in sorted(linux.items())
            if name in known and isinstance(facts.get("s"), int | float)
        }
    return found


def write(by_region: dict[str, dict[str, float]], as_of: str, path: Path = TABLE) -> None:
    """Put the savings into the price table at `path`, with the section's date; the rest stays."""
    prices = json.loads(path.read_text())
    for region, per_type in by_region.items():
        prices["regions"][region]["spot"] = per_type
    prices["sections"]["spot"] = {
        "as_of": as_of,
        "source": [SOURCE, "https://github.com/alexei-led/spotinfo (a committed copy of the data)"],
        "note": (
            "Spot price = on-demand x (1 - savings of that type in that region), the savings "
            "being the Spot Instance Advisor's average for Linux on the date given. A type "
            "the Advisor does not list (newer than the snapshot) takes "
            "assumptions.spot_savings. Spot prices move daily; this is an average, not a quote."
        ),
    }
    path.write_text(json.dumps(prices, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", required=True, help="the date of the Advisor data")
    parser.add_argument("--write", action="store_true", help="update aws.json beside this file")
    args = parser.parse_args(argv)
    by_region = savings(json.load(sys.stdin), json.loads(TABLE.read_text()))
    if args.write:
        write(by_region, args.as_of)
        return 0
    json.dump(by_region, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
