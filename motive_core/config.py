"""Every setting that changes an attribution vector, in one place.

An index records this as ``config.json``; a query computed under different settings is refused with the
differing keys named (DESIGN "Contracts").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from motive_core.errors import ConfigMismatchError, MotiveError

# Bump when a code change alters the vectors computed for the same inputs and settings.
CODE_VERSION = "1"
LOSSES = ("motive", "temporal_diff")


@dataclass(frozen=True)
class AttributionSettings:
    """User-facing knobs of Motive (paper defaults: mask on, index 500 of 1000, D′ = 512)."""

    use_mask: bool = True
    tracker: str = "opencv"
    t_index: int = 500
    noise_seed: int = 0
    proj_dim: int = 512
    proj_seed: int = 0
    block_size: int = 32768
    params: str = ".*"
    loss: str = "motive"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise MotiveError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.proj_dim < 1 or self.proj_dim > self.block_size:
            raise MotiveError(f"projection dimension {self.proj_dim} must be between 1 and the block size {self.block_size}")

    def to_dict(self) -> dict:
        return asdict(self)


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested dict → {"a.b": value} so differences can be named precisely."""
    flat: dict = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def config_differences(expected: dict, actual: dict) -> list[str]:
    """Keys (dotted) whose values differ or exist on one side only."""
    a, b = flatten(expected), flatten(actual)
    return sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))


def require_same_config(index_config: dict, query_config: dict) -> None:
    """Refuse a query whose vector settings differ from the index's (names every differing key)."""
    differing = config_differences(index_config, query_config)
    if differing:
        a, b = flatten(index_config), flatten(query_config)
        detail = "; ".join(f"{k}: index={a.get(k)!r} query={b.get(k)!r}" for k in differing)
        raise ConfigMismatchError(f"query settings differ from the index's in {', '.join(differing)} ({detail})")
