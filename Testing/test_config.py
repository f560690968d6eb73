"""TrackingConfig declares each option once; the CLI flags follow from it and validate the same way."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from LinGuinELib.cli.options import add_tracking_options, config_from_args
from LinGuinELib.config import DEFAULT_BACKEND, TrackingConfig, option_specs
from LinGuinELib.errors import InputError


def _parse(*argv: str) -> TrackingConfig:
    parser = argparse.ArgumentParser()
    add_tracking_options(parser)
    return config_from_args(parser.parse_args(list(argv)))


def test_every_option_declares_help_and_a_valid_default():
    specs = option_specs()
    assert [s.name for s in specs] == ["registration", "segmentation", "mode", "boost", "device",
                                       "search_radius_mm", "registration_options", "segmentation_options"]
    for spec in specs:
        assert len(spec.help) > 20, spec.name
        assert spec.check(spec.default) == spec.default
    assert TrackingConfig().registration == TrackingConfig().segmentation == DEFAULT_BACKEND


def test_cli_defaults_are_the_config_defaults():
    assert _parse() == TrackingConfig()


def test_every_option_has_a_flag_that_reaches_the_config():
    config = _parse("--registration", "unigradicon", "--segmentation", "nninteractive", "--mode", "chain",
                    "--boost", "--device", "cuda:1", "--search-radius-mm", "7.5",
                    "--registration-option", "weights=/w.trch", "--registration-option", "io_steps=0",
                    "--segmentation-option", "model_dir=/m")
    assert config == TrackingConfig("unigradicon", "nninteractive", "chain", True, "cuda:1", 7.5,
                                    {"weights": "/w.trch", "io_steps": 0}, {"model_dir": "/m"})
    assert _parse("--boost", "--no-boost").boost is False


@pytest.mark.parametrize("field, value, message", [
    ("mode", "sideways", "mode 'sideways' is not one of direct, chain"),
    ("device", "gpu", "device 'gpu' is not valid"),
    ("search_radius_mm", 0.0, r"search_radius_mm must lie in \[0.5, 100.0\], got 0.0"),
    ("search_radius_mm", 250, r"search_radius_mm must lie in \[0.5, 100.0\]"),
    ("search_radius_mm", "10", "search_radius_mm must be a number"),
    ("boost", "yes", "boost must be true or false"),
    ("registration", "", "registration must be a non-empty string"),
    ("segmentation_options", ["x"], "segmentation_options must map option names to values"),
])
def test_bad_values_fail_with_one_line_naming_the_option(field, value, message):
    with pytest.raises(InputError, match=message):
        TrackingConfig(**{field: value})


def test_the_cli_rejects_out_of_bounds_values_like_the_config():
    done = subprocess.run([sys.executable, "-m", "LinGuinELib.cli.main", "track", "nowhere.json", "--out", "o",
                           "--search-radius-mm", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "search_radius_mm must lie in [0.5, 100.0], got 0.0" in done.stderr


def test_overrides_apply_and_unknown_names_are_errors():
    base = TrackingConfig(mode="chain")
    assert base.with_overrides(boost=True) == TrackingConfig(mode="chain", boost=True)
    with pytest.raises(InputError, match=r"unknown tracking option\(s\) serach_radius_mm \(known: registration"):
        base.with_overrides(serach_radius_mm=5)
    with pytest.raises(InputError, match="mode"):
        base.with_overrides(mode="nope")


def test_secrets_never_leave_through_to_dict():
    config = TrackingConfig(segmentation="nninteractive-remote",
                            segmentation_options={"server_url": "http://h:1527", "api_key": "s3cret"})
    assert config.to_dict()["segmentation_options"] == {"server_url": "http://h:1527"}
    assert config.to_dict(secrets=True)["segmentation_options"]["api_key"] == "s3cret"
    assert config.segmentation_options["api_key"] == "s3cret"  # the run itself still has it
