"""The configuration is read by libyaml where PyYAML has it (a tenth of a replay's start was the
defaults in pure Python): what it reads must be what the pure-Python safe loader reads, its errors
the same kind, and the defaults, read once, must not carry one configuration's changes into the next."""

from __future__ import annotations

import pytest
import yaml

from eventmgmt.config import ConfigError, _defaults_text, load_config, parse_config, read_yaml

USER = """
correlation:
  window: 7m
response:
  - kind: high_error_rate
    when: {}
kinds:
  - kind: custom_thing
    class: alert
    when: {signal: "Custom.*", source: alertmanager}
anchors: &a {x: 1}
"""


def test_the_defaults_and_a_user_file_read_as_the_pure_python_loader_reads_them() -> None:
    assert read_yaml(_defaults_text()) == yaml.load(_defaults_text(), Loader=yaml.SafeLoader)
    assert read_yaml(USER) == yaml.load(USER, Loader=yaml.SafeLoader)


def test_unsafe_tags_and_bad_yaml_are_refused(tmp_path) -> None:
    with pytest.raises(yaml.YAMLError):
        read_yaml("!!python/object/apply:os.system ['true']")
    bad = tmp_path / "bad.yaml"
    bad.write_text("correlation: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)


def test_one_configuration_leaves_the_defaults_as_they_were() -> None:
    before = parse_config({})
    changed = parse_config({"correlation": {"window": "3m"}, "response": {}})
    after = parse_config({})
    assert changed.correlation.window != before.correlation.window
    assert after.model_dump() == before.model_dump()
