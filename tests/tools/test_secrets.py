"""The one secret walker every tool shares: what it unwraps, what it hides, what it keeps."""

from app_platform_tools import secrets

RECORDED = {
    "name": "db",
    "password": secrets.mark("hunter2"),
    "env": [{"name": "URL", "value": secrets.mark({"user": "u", "pass": None})}],
    "owner": {secrets.RESOURCE_KEY: "urn:pulumi:dev::p::t::owner"},
}


def test_unwrap_gives_the_plain_values_a_program_passed():
    assert secrets.unwrap(RECORDED) == {
        "name": "db",
        "password": "hunter2",
        "env": [{"name": "URL", "value": {"user": "u", "pass": None}}],
        "owner": {secrets.RESOURCE_KEY: "urn:pulumi:dev::p::t::owner"},
    }


def test_redact_hides_each_secret_whole():
    redacted = secrets.redact(RECORDED)
    assert redacted["password"] == secrets.REDACTED
    assert redacted["env"] == [{"name": "URL", "value": secrets.REDACTED}]
    assert "hunter2" not in str(redacted)


def test_redact_leaves_keeps_the_keys_and_hides_every_value_below_a_marker():
    redacted = secrets.redact_leaves(RECORDED, "x")
    assert redacted["env"] == [{"name": "URL", "value": {"user": "x", "pass": None}}]
    assert redacted["password"] == "x"
    assert redacted["name"] == "db"


def test_nested_markers_are_all_taken_off():
    assert secrets.unwrap(secrets.mark([secrets.mark("a"), "b"])) == ["a", "b"]
    assert secrets.redact_leaves(secrets.mark({"k": secrets.mark("v")}), "x") == {"k": "x"}


def test_walk_hands_resource_references_to_their_own_handler():
    walked = secrets.walk(RECORDED, on_secret=lambda _: "s", on_resource=lambda urn: urn[-5:])
    assert walked["owner"] == "owner"
    assert walked["password"] == "s"


def test_only_an_object_with_the_marker_alone_is_a_secret():
    assert secrets.is_secret(secrets.mark(1))
    assert not secrets.is_secret({secrets.SECRET_KEY: 1, "other": 2})
    assert secrets.redacted("v", secret=True) == secrets.REDACTED
    assert secrets.redacted("v", secret=False) == "v"
