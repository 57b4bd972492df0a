"""Every setting that changes an attribution vector, in one place, and the settings clips are generated with.

An index records the vector settings as ``config.json``; a query computed under different settings is
refused with the differing keys named (DESIGN "Contracts").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from motive_core.errors import ConfigMismatchError, MotiveError

# Bump when a code change alters the vectors computed for the same inputs and settings.
CODE_VERSION = "1"
LOSSES = ("motive", "temporal_diff")
# How the text enters the gradient: "caption" conditions every clip on its own caption and the query on its
# prompt (the paper); "null" conditions both sides on the empty prompt, so no word can carry a ranking.
CONDITIONINGS = ("caption", "null")
# "fastfood": block Fastfood (paper Eq. 8); "countsketch": one-sparse JL, faster; "blocksketch": one-sparse JL
# with table hashes, fastest (docs/performance.md).
PROJECTORS = ("fastfood", "countsketch", "blocksketch")
# Settings added after indexes were first written, with the value every older index was built under.
LEGACY_SETTINGS = {"conditioning": "caption", "projector": "fastfood", "t_ensemble": ""}


def setting(default, help: str, choices: tuple[str, ...] | None = None, flag: str | None = None):
    """A settings field with its command-line help (the CLI's flags are generated from these fields)."""
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


@dataclass(frozen=True)
class AttributionSettings:
    """User-facing knobs of Motive (paper defaults: mask on, index 500 of 1000, D′ = 512).

    Every field changes the vectors, so every field is recorded in an index's ``config.json``; the command
    line's ``build-index`` flags are generated from these fields (``cli.add_settings_flags``).
    """

    use_mask: bool = setting(True, "weight the loss by the motion mask (Eq. 15); --no-mask: the paper's "
                                   "'w/o motion mask' baseline (W ≡ 1)", flag="mask")
    tracker: str = setting("opencv", "motion estimator: opencv or alltracker (§3.4)")
    t_index: int = setting(500, "the fixed scheduler index t_fix (of 1000) shared by every clip")
    t_ensemble: str = setting("", "more scheduler indexes, comma-separated (e.g. 300,700): the vector is the mean "
                                  "of the unit vectors at t_index and at each of them (empty: t_index alone)")
    noise_seed: int = setting(0, "seed of the shared noise draw ε_fix")
    proj_dim: int = setting(512, "projection dimension D′")
    proj_seed: int = setting(0, "seed of the random projection")
    block_size: int = setting(32768, "Fastfood block length (a power of two ≤ 32768)")
    params: str = setting(".*", "regex over the denoiser parameter names whose gradients are used")
    loss: str = setting("motive", "attribution loss: the paper's motion-weighted loss (Eq. 15-16) or its "
                                  "temporal-difference variant", LOSSES)
    conditioning: str = setting("caption", "text in the gradient: each clip's caption (the paper) or the null "
                                           "prompt on both sides", CONDITIONINGS)
    projector: str = setting("fastfood", "random projection (Eq. 9): block Fastfood, or a one-sparse count-sketch "
                                         "with hashed or table (blocksketch) buckets", PROJECTORS)

    def __post_init__(self) -> None:
        for name, allowed in (("loss", LOSSES), ("conditioning", CONDITIONINGS), ("projector", PROJECTORS)):
            if getattr(self, name) not in allowed:
                raise MotiveError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        if self.proj_dim < 1 or self.proj_dim > self.block_size:
            raise MotiveError(f"projection dimension {self.proj_dim} must be between 1 and the block size {self.block_size}")
        try:
            timesteps = self.timesteps
        except ValueError:
            raise MotiveError(f"t_ensemble must be scheduler indexes separated by commas, e.g. '300,700' "
                              f"(got {self.t_ensemble!r})") from None
        if len(set(timesteps)) != len(timesteps) or min(timesteps) < 0:
            raise MotiveError(f"t_index and t_ensemble must name different scheduler indexes ≥ 0 (got {timesteps})")

    @property
    def timesteps(self) -> tuple[int, ...]:
        """The scheduler indexes a vector is taken at: t_index first, then t_ensemble's."""
        return (self.t_index, *(int(part) for part in self.t_ensemble.split(",") if part.strip()))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_vector_config(cls, config: dict) -> "AttributionSettings":
        """The settings an index's vector config records (``Featurizer.config()``), so a query is computed
        exactly as the index was; settings the index predates are filled in as they were then."""
        config = upgrade_vector_config(config)
        return cls(**config["settings"], tracker=config["tracker"]["name"])

    def conditioning_prompt(self, caption: str) -> str:
        """The text the gradient is conditioned on: the caption itself, or the empty prompt under "null"."""
        return caption if self.conditioning == "caption" else ""


# Named starting points: "paper" is Motive as published (each clip's caption, the paper's loss, Eq. 15-16);
# "motion" ranks by the clip's motion alone (null prompt, temporal-difference loss, the unit vectors at scheduler
# indexes 300, 500 and 700 averaged): the demo's default, which a prompt cannot steer (docs/results.md).
PRESETS: dict[str, AttributionSettings] = {
    "paper": AttributionSettings(),
    "motion": AttributionSettings(loss="temporal_diff", conditioning="null", t_ensemble="300,700"),
}


@dataclass(frozen=True)
class GenerationSettings:
    """How a clip is sampled: one set of defaults for the command line, the app and the demo rebuild."""

    seed: int = 0
    steps: int = 30
    guidance: float = 3.0  # classifier-free guidance scale; 1 turns it off (one denoiser call per step)
    shift: float | None = None  # flow shift of the sampling schedule; None: the model's own


GENERATION = GenerationSettings()


def upgrade_vector_config(config: dict) -> dict:
    """An index's vector config with settings it predates filled in as they were then (LEGACY_SETTINGS)."""
    settings = {**LEGACY_SETTINGS, **config.get("settings", {})}
    return {**config, "settings": settings}


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
