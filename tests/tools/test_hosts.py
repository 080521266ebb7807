"""`make hosts`: the /etc/hosts line from a stack's outputs, written in place of the last one."""

import json

import pytest

from app_platform_tools import hosts


def test_hosts_line_resolves_the_load_balancer(dev, tmp_path, capsys):
    outputs = {name: output.value for name, output in dev.outputs.items()}
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    resolved = []

    def resolver(name: str) -> str:
        resolved.append(name)
        return "203.0.113.10"

    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("127.0.0.1 localhost\n203.0.113.9 old.test # app-platform\n")

    assert (
        hosts.main(
            ["--outputs", str(outputs_file), "--write", "--hosts-file", str(hosts_file)], resolver
        )
        == 0
    )
    assert (
        hosts.main(
            ["--outputs", str(outputs_file), "--write", "--hosts-file", str(hosts_file)], resolver
        )
        == 0
    )

    assert resolved == [outputs["loadBalancerHostname"]] * 2
    expected = f"203.0.113.10 {' '.join(outputs['hostnames'])} # app-platform"
    assert hosts_file.read_text() == f"127.0.0.1 localhost\n{expected}\n"
    assert capsys.readouterr().out.splitlines() == [expected, expected]


def test_hosts_fails_clearly_before_the_first_deployment(tmp_path, capsys):
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text("{}")
    assert hosts.main(["--outputs", str(outputs_file)]) == 1
    assert "run pulumi up" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["198.51.100.7"])
def test_hosts_line_format(address):
    line = hosts.hosts_line(
        {"loadBalancerHostname": "nlb.example", "hostnames": ["a.test", "b.test"]}, address
    )
    assert line == f"{address} a.test b.test # app-platform"
