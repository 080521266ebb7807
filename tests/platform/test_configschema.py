"""Pulumi.yaml's config block and the README's configuration table say what the options models
say: every key's type, default and description, from one source."""

import shutil
from pathlib import Path

import pytest
import yaml

from app_platform import config, configschema

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path):
    """A copy of Pulumi.yaml and README.md to drift."""
    for name in ("Pulumi.yaml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_pulumi_yaml_and_the_readme_say_what_the_models_say():
    assert configschema.drift(ROOT / "Pulumi.yaml") == []
    assert configschema.main([str(ROOT / "Pulumi.yaml")]) == 0


def test_every_key_of_pulumi_yaml_is_owned_by_a_model():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert list(declared) == list(config.KEYS)
    keys = configschema.declared_keys()
    assert keys["spotMaxSize"]["default"] == 6  # a key of the spot group: the group's default
    assert "default" not in keys["publicAccessCidrs"]  # required: no default to repeat
    assert keys["alertEmailTo"] == {**keys["alertEmailTo"], "type": "array", "default": []}
    assert keys["apps"]["type"] == "object"
    assert keys["prometheusVolumeSizeGib"]["type"] == "integer"


def test_secret_keys_come_from_the_fields_marked_secret():
    assert set(config.SECRET_KEYS) == {
        "argocdAdminPassword",
        "grafanaAdminPassword",
        "alertSlackWebhookUrl",
        "alertSmtpPassword",
        "alertHeartbeatUrl",
    }


def test_a_drifted_default_description_or_type_is_reported(project, capsys):
    pulumi_yaml = project / "Pulumi.yaml"
    declared = yaml.safe_load(pulumi_yaml.read_text())
    declared["config"]["natGateways"]["default"] = "single"
    declared["config"]["gitopsPath"]["description"] = "Somewhere."
    declared["config"]["alertSmtpFrom"]["type"] = "integer"
    declared["config"]["platformStack"]["description"] = "Something else."
    declared["config"]["unknownKey"] = {"type": "string"}
    pulumi_yaml.write_text(yaml.safe_dump(declared))
    assert configschema.main([str(pulumi_yaml)]) == 1
    printed = capsys.readouterr().out
    assert "natGateways.default: the model says 'perAz', the file 'single'" in printed
    assert "gitopsPath.description" in printed
    assert "alertSmtpFrom.type: the model says 'string', the file 'integer'" in printed
    assert "platformStack.description" in printed
    assert "unknownKey: no model owns it" in printed


def test_a_drifted_readme_table_is_reported(project, capsys):
    readme = project / "README.md"
    readme.write_text(
        readme.read_text().replace("| `gitopsPath` | string |", "| `gitopsPath` | x |")
    )
    assert configschema.main([str(project / "Pulumi.yaml")]) == 1
    assert "a table differs from the models" in capsys.readouterr().out


def test_write_restores_both_files_and_keeps_the_rest(project):
    pulumi_yaml, readme = project / "Pulumi.yaml", project / "README.md"
    declared = yaml.safe_load(pulumi_yaml.read_text())
    del declared["config"]["vpcCidr"]
    head = (ROOT / "Pulumi.yaml").read_text().split("\nconfig:\n", 1)[0]
    pulumi_yaml.write_text(f"{head}\nconfig:\n  vpcCidr:\n    type: integer\n")
    text = readme.read_text().replace("| `vpcFlowLogs` | boolean |", "| `vpcFlowLogs` | string |")
    readme.write_text(text.replace("| `runAsUser` | `10001` |", "| `runAsUser` | `0` |"))
    assert configschema.main([str(pulumi_yaml), "--write"]) == 0
    assert pulumi_yaml.read_text() == (ROOT / "Pulumi.yaml").read_text()  # comments kept
    assert readme.read_text() == (ROOT / "README.md").read_text()
    assert configschema.main([str(pulumi_yaml)]) == 0


def test_the_readme_table_escapes_what_markdown_would_swallow():
    table = configschema.table()
    assert "&lt;name&gt;-&lt;stack&gt;" in table  # not an HTML tag
    assert "| `apps` | object | `{}` | The apps this stack runs: see [Apps]" in table
    assert "| `argocdAdminPassword` | string (secret) | generated |" in table
    assert "| `publicAccessCidrs` | array | required |" in table


def test_the_readme_app_table_lists_every_key_of_an_app_entry_with_its_default():
    table = configschema.app_table()
    assert "| `port` | required |" in table
    assert "| `runAsUser` | `10001` |" in table
    assert "| `cpu` {request, limit} | required | CPU request and limit per pod. |" in table
    assert "| `minReplicas` | — |" in table  # filled from replicas when not given
    assert "`name`" not in table  # the entry's key in the apps map
