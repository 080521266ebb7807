"""Which CPU architecture an instance type runs: what node AMIs and image builds follow."""

import pytest

from app_platform.instance_types import architecture, by_architecture, one_architecture


@pytest.mark.parametrize(
    "instance_type",
    [
        "t4g.nano",
        "m7g.large",
        "m6gd.xlarge",
        "c6gn.large",
        "r8g.2xlarge",
        "im4gn.large",
        "a1.large",
    ],
)
def test_graviton_families_are_arm64(instance_type):
    assert architecture(instance_type) == "arm64"


@pytest.mark.parametrize(
    "instance_type",
    [
        "t3.large",
        "m6i.large",
        "m6a.large",
        "m7i-flex.large",
        "c6in.large",
        "g4dn.xlarge",
        "m5.large",
    ],
)
def test_other_families_are_amd64(instance_type):
    assert architecture(instance_type) == "amd64"


def test_a_name_that_is_no_instance_type_is_refused():
    with pytest.raises(
        ValueError, match=r"expected an instance type such as t3\.large, not 'large'"
    ):
        architecture("large")


def test_types_group_by_architecture_in_the_order_given():
    assert by_architecture(["m7g.large", "m6i.large", "c7g.large"]) == {
        "arm64": ["m7g.large", "c7g.large"],
        "amd64": ["m6i.large"],
    }
    assert one_architecture(["m7g.large", "c7g.large"]) == "arm64"


def test_mixed_architectures_are_refused_naming_the_types_of_each():
    with pytest.raises(ValueError) as raised:
        one_architecture(["m7g.large", "m6i.large"])
    assert str(raised.value) == (
        "expected instance types of one architecture, got amd64: ['m6i.large']; "
        "arm64: ['m7g.large']"
    )
