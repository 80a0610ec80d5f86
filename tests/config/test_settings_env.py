import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env_bool, env_int, env_list, env_str


def test_values_are_parsed(monkeypatch):
    monkeypatch.setenv("W_BOOL", "Yes")
    monkeypatch.setenv("W_INT", "42")
    monkeypatch.setenv("W_LIST", "a, b,,c")
    assert env_bool("W_BOOL") is True
    assert env_int("W_INT", minimum=1) == 42
    assert env_list("W_LIST") == ["a", "b", "c"]


def test_defaults_apply_when_unset_or_empty(monkeypatch):
    monkeypatch.setenv("W_EMPTY", "")
    assert env_str("W_EMPTY", "fallback") == "fallback"
    assert env_bool("W_UNSET_BOOL", False) is False
    assert env_list("W_UNSET_LIST", ["x"]) == ["x"]


@pytest.mark.parametrize(
    ("reader", "value", "message"),
    [
        (env_bool, "maybe", "is not a boolean"),
        (env_int, "ten", "is not an integer"),
    ],
)
def test_bad_values_fail_loudly(monkeypatch, reader, value, message):
    monkeypatch.setenv("W_BAD", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        reader("W_BAD")


def test_below_minimum_and_missing_required_fail(monkeypatch):
    monkeypatch.setenv("W_SMALL", "0")
    with pytest.raises(ImproperlyConfigured, match="is below 1"):
        env_int("W_SMALL", minimum=1)
    with pytest.raises(ImproperlyConfigured, match="W_REQUIRED is required"):
        env_str("W_REQUIRED")
