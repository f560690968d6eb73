"""Tracking settings, declared once.

Each field of ``TrackingConfig`` carries its default, its choices or bounds and its help text
(``option(...)`` metadata). The command-line flags (``cli/options.py``), the Slicer module's
settings (``LinGuinE/LinGuinELogic/settings.py``) and ``LinGuinELogic.track(**overrides)`` are
derived from these fields, and ``__post_init__`` validates every one of them the same way, so a
new option is one field here plus the code that uses it.

Each field also declares the first stage of the work it feeds (``STAGES``): a study kept open
(``session.StudySession``) keeps what was computed before that stage when the option changes,
e.g. its scans and registered pairs when only a segmentation option changed.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from .errors import InputError

DEFAULT_BACKEND = "classical"
MODES = ("direct", "chain")
DEVICE_PATTERN = r"cpu|cuda(:\d+)?"
# Backend option keys whose values are secrets: never written to run.json, the scene or a log.
SECRET_OPTION_KEYS = frozenset({"api_key", "token", "password"})
# The stages of the work, each fed by the ones before it: the pair registrations (and the points
# mapped through them), the per-lesion tracking (plan, segmentation, filtering, boost, quality
# checks), and what is only written or shown from a result. A setting changes its stage and every
# later one; what an earlier stage computed stays valid.
STAGES = ("registration", "segmentation", "output")


@dataclass(frozen=True)
class OptionSpec:
    """What one field of ``TrackingConfig`` declares; consumers derive their controls from it."""

    name: str
    kind: type  # str, bool, float or dict (backend options)
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None  # a str value must match it in full
    flag: str = ""  # command-line flag; dict options take KEY=VALUE and may repeat
    stage: str = STAGES[0]  # the first stage (of ``STAGES``) whose work depends on this option

    def check(self, value: Any) -> Any:
        """The value, validated (and a whole float made float); InputError names the option."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InputError(f"{self.name} must be true or false, got {value!r}")
            return value
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{self.name} must be a number, got {value!r}")
            value = float(value)
            lo, hi = self.minimum, self.maximum
            if not (lo is None or value >= lo) or not (hi is None or value <= hi):
                raise InputError(f"{self.name} must lie in [{lo}, {hi}], got {value}")
            return value
        if self.kind is dict:
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise InputError(f"{self.name} must map option names to values, got {value!r}")
            return dict(value)
        if not isinstance(value, str) or not value:
            raise InputError(f"{self.name} must be a non-empty string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.name} '{value}' is not one of {', '.join(self.choices)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise InputError(f"{self.name} '{value}' is not valid (expected {self.pattern})")
        return value


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field whose metadata declares the option (see ``OptionSpec``)."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help, **spec})
    return field(default=default, metadata={"help": help, **spec})


@dataclass
class TrackingConfig:
    """How to track; recorded in run.json (without secrets)."""

    registration: str = option(DEFAULT_BACKEND, "registration backend, as listed by `linguine backends`",
                               stage="registration")
    segmentation: str = option(DEFAULT_BACKEND, "point-prompted segmentation backend", stage="segmentation")
    # the pairs a lesion needs differ, but a pair's registration does not depend on the mode
    mode: str = option("direct", "direct: the prompt scan to every other scan (the paper's default); "
                                 "chain: scan to the next scan in time, re-centred on each new mask",
                       choices=MODES, stage="segmentation")
    boost: bool = option(False, "re-prompt the segmenter at the centre of its first mask on each scan",
                         stage="segmentation")
    # both backends are built for the device: registration is the first stage it feeds
    device: str = option("cpu", "cpu or cuda[:N] (learned backends; classical ones always use the CPU)",
                         pattern=DEVICE_PATTERN, stage="registration")
    search_radius_mm: float = option(
        10.0, "keep a component not containing the mapped point only if its nearest voxel lies within "
              "this distance (mm); beyond it the lesion is reported not_found",
        minimum=0.5, maximum=100.0, stage="segmentation")
    registration_options: dict[str, Any] = option(
        {}, "registration backend option KEY=VALUE, e.g. weights=/path/unigradicon.trch",
        flag="--registration-option", stage="registration")
    segmentation_options: dict[str, Any] = option(
        {}, "segmentation backend option KEY=VALUE, e.g. model_dir=/path/nnInteractive_v1.0",
        flag="--segmentation-option", stage="segmentation")

    def __post_init__(self) -> None:
        for spec in option_specs():
            setattr(self, spec.name, spec.check(getattr(self, spec.name)))

    def with_overrides(self, **overrides: Any) -> TrackingConfig:
        """A copy with some fields changed; an unknown name is an error naming the known ones."""
        unknown = sorted(set(overrides) - {spec.name for spec in option_specs()})
        if unknown:
            known = ", ".join(spec.name for spec in option_specs())
            raise InputError(f"unknown tracking option(s) {', '.join(unknown)} (known: {known})")
        return replace(self, **overrides)

    def to_dict(self, secrets: bool = False) -> dict[str, Any]:
        """Plain values; backend options named in SECRET_OPTION_KEYS are left out unless ``secrets``."""
        out = asdict(self)
        if not secrets:
            for name in ("registration_options", "segmentation_options"):
                out[name] = {k: v for k, v in out[name].items() if k not in SECRET_OPTION_KEYS}
        return out


_TYPES = {"str": str, "bool": bool, "float": float}


def option_specs() -> list[OptionSpec]:
    """One ``OptionSpec`` per field of ``TrackingConfig``, in declaration order."""
    specs = []
    for f in fields(TrackingConfig):
        kind = dict if f.default is MISSING else _TYPES[type(f.default).__name__]
        default = f.default_factory() if f.default is MISSING else f.default
        meta = dict(f.metadata)
        flag = meta.pop("flag", "--" + f.name.replace("_", "-"))
        specs.append(OptionSpec(f.name, kind, default, flag=flag, **meta))
    return specs


def first_changed_stage(old: TrackingConfig, new: TrackingConfig) -> str | None:
    """The earliest stage fed by an option that differs between the configs (secrets compared
    too: another API key may give other results); None when they are the same."""
    a, b = old.to_dict(secrets=True), new.to_dict(secrets=True)
    changed = {spec.stage for spec in option_specs() if a[spec.name] != b[spec.name]}
    return next((stage for stage in STAGES if stage in changed), None)
