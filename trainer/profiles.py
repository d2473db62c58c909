"""Training profiles: `quick` (the default, CI-sized: all five models in a few minutes on 2 CPU
cores) and `full` (for real use)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    max_epochs: int
    steps_per_epoch: int
    batch_size: int
    seq_len: int
    learning_rate: float
    patience: int
    min_delta: float  # relative: an epoch counts as better when it lowers the loss by this fraction
    synthetic_steps: int  # training steps of synthetic data when no real set is found
    val_steps: int  # validation is capped at this many steps, the same ones every epoch


PROFILES = {
    "quick": Profile(
        "quick",
        max_epochs=25,
        steps_per_epoch=40,
        batch_size=32,
        seq_len=48,
        learning_rate=3e-3,
        patience=5,
        min_delta=0.005,
        synthetic_steps=20_000,
        val_steps=4_096,
    ),
    "full": Profile(
        "full",
        max_epochs=200,
        steps_per_epoch=300,
        batch_size=64,
        seq_len=128,
        learning_rate=1e-3,
        patience=12,
        min_delta=0.001,
        synthetic_steps=400_000,
        val_steps=65_536,
    ),
}
