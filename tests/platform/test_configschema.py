"""Pulumi.yaml repeats the defaults and descriptions the components' options models own."""

from pathlib import Path

import yaml

from app_platform import config, configschema

ROOT = Path(__file__).resolve().parents[2]


def test_pulumi_yaml_says_what_the_models_say():
    assert configschema.drift(ROOT / "Pulumi.yaml") == []
    assert configschema.main([str(ROOT / "Pulumi.yaml")]) == 0


def test_every_model_owned_key_is_a_known_config_key():
    keys = configschema.declared_keys()
    assert {"vpcCidr", "spotMaxSize", "kubernetesVersion", "gitopsPath", "domain"} <= set(keys)
    assert set(keys) <= set(config.KEYS)
    assert keys["spotMaxSize"]["default"] == 6
    assert "default" not in keys["publicAccessCidrs"]  # required: no default to repeat


def test_a_drifted_default_or_description_is_reported(tmp_path, capsys):
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["config"]["natGateways"]["default"] = "single"
    project["config"]["gitopsPath"]["description"] = "Somewhere."
    drifted = tmp_path / "Pulumi.yaml"
    drifted.write_text(yaml.safe_dump(project))
    assert configschema.main([str(drifted)]) == 1
    printed = capsys.readouterr().out
    assert "natGateways.default: the model says 'perAz', the file 'single'" in printed
    assert "gitopsPath.description" in printed
