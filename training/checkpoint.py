"""Checkpoints that let a training run span sessions (`captionbot train --resume RUN_DIR`).

After every epoch RUN_DIR/checkpoint/ holds what the next epoch needs: the trained variables, each
optimizer's variables (iteration count, Adam moments, moving averages), where the run stands (stage,
epoch, best score, patience counter, history), the config, the vocabulary and what the caller needs
to rebuild the run. It replaces the previous one whole (captioning/directory_swap.py), so an
interruption leaves the previous epoch's checkpoint or this one's, never a mixture. Arrays are a
NumPy archive read with allow_pickle=False, everything else JSON; no pickle.

Random draws need no saved state: each epoch reseeds from (seed, stage, epoch) (training/epoch_seeds.py).
"""
from __future__ import annotations

import dataclasses
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioning.directory_swap import readable_directory, replace_directory
from captioning.text import Vocabulary

CHECKPOINT_DIR = "checkpoint"
STATE_FILE, ARRAYS_FILE, VOCAB_FILE = "state.json", "variables.npz", "vocab.json"
FORMAT_VERSION = 1
STAGES = ("xe", "scst")  # the order a run goes through them
MODEL, OPTIMIZER = "model/", "optimizer/"  # key prefixes in the archive


class CheckpointError(ValueError):
    """A run directory whose checkpoint is missing, damaged, or does not fit the run resuming it."""


@dataclass
class Progress:
    """Where a run stands after an epoch."""

    stage: str  # one of STAGES
    epoch: int  # epochs finished in this stage
    stopped: bool  # patience ended this stage
    finished: bool  # nothing is left to train
    best_score: tuple[bool, float]  # (passes the gate, selection score) of the bundle kept so far
    best_scores: dict
    stale: int  # epochs since the best one
    history: list[dict]


@dataclass
class Checkpoint:
    directory: Path
    progress: Progress
    config: dict  # TrainConfig.to_dict()
    run: dict  # what rebuilds the run: version, training info, model configs, the caller's data arguments
    vocab: Vocabulary
    arrays: dict[str, np.ndarray]


def optimizer_variables(optimizer) -> dict[str, object]:
    """An optimizer's variables by path without its own name ("adam_1/lstm_kernel_momentum" →
    "lstm_kernel_momentum"): Keras numbers optimizer names per process, so the prefix differs on resume."""
    variables = {v.path.split("/", 1)[-1]: v for v in optimizer.variables}
    if len(variables) != len(optimizer.variables):
        raise ValueError(f"optimizer {optimizer.name} has variables with the same path")
    return variables


def _archive_variables(variables: dict[str, object], optimizers: dict[str, object]) -> dict[str, object]:
    named = {MODEL + name: v for name, v in variables.items()}
    for name, optimizer in optimizers.items():
        named.update({f"{OPTIMIZER}{name}/{key}": v for key, v in optimizer_variables(optimizer).items()})
    return named


def write_checkpoint(
    run_dir: Path, progress: Progress, config: dict, run: dict, vocab: Vocabulary, variables: dict[str, object], optimizers: dict[str, object]
) -> Path:
    """Replace RUN_DIR/checkpoint with this state; `variables` are the trained variables by stable
    name, `optimizers` the optimizers by name (each with all its variables)."""
    arrays = {key: v.numpy() for key, v in _archive_variables(variables, optimizers).items()}
    state = {"format_version": FORMAT_VERSION, "progress": dataclasses.asdict(progress), "config": config, "run": run}

    def write(folder: Path) -> None:
        with open(folder / ARRAYS_FILE, "wb") as file:
            np.savez(file, **arrays)  # uncompressed: Adam moments hardly compress, and writing stays fast
        vocab.save(folder / VOCAB_FILE)
        (folder / STATE_FILE).write_text(json.dumps(state, indent=1, default=_plain))

    return replace_directory(Path(run_dir) / CHECKPOINT_DIR, write)


def _plain(value):
    """NumPy scalars (a score, a gate's verdict) as the Python values JSON knows."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def read_checkpoint(run_dir: Path) -> Checkpoint:
    """The run's last checkpoint; CheckpointError says what is missing or damaged."""
    directory = readable_directory(Path(run_dir) / CHECKPOINT_DIR)  # or its .old, whole, after a stop between renames
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint in {run_dir} (no {CHECKPOINT_DIR}/ there): nothing to resume before a first epoch has finished")
    try:
        state = json.loads((directory / STATE_FILE).read_text())
        if state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{directory}: unsupported checkpoint format {state.get('format_version')!r}")
        progress = Progress(**state["progress"])
        progress.best_score = tuple(progress.best_score)
        vocab = Vocabulary.load(directory / VOCAB_FILE)
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        return Checkpoint(directory, progress, state["config"], state["run"], vocab, arrays)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"the checkpoint in {directory} is damaged ({type(error).__name__}: {error}); it cannot be resumed") from error


def check_fits(checkpoint: Checkpoint, config: dict, run: dict, vocab: Vocabulary) -> None:
    """Resuming is only the same run with the same settings, vocabulary, models and data size."""
    config = json.loads(json.dumps(config))  # as the checkpoint holds it (tuples as lists)
    differing = sorted(key for key in {*config, *checkpoint.config} if config.get(key) != checkpoint.config.get(key))
    if differing:
        raise CheckpointError(f"{checkpoint.directory} was written by a run with other settings ({', '.join(differing)})")
    if checkpoint.vocab.words != vocab.words:
        raise CheckpointError(f"{checkpoint.directory} was written by a run with another vocabulary")
    for key in ("models", "train_captions"):
        if json.loads(json.dumps(run[key])) != checkpoint.run.get(key):
            raise CheckpointError(f"{checkpoint.directory} was written by a run with other {key.replace('_', ' ')}: {checkpoint.run.get(key)} there, {run[key]} now")


def restore_variables(checkpoint: Checkpoint, variables: dict[str, object] | None = None, optimizers: dict[str, object] | None = None) -> None:
    """Assign the checkpoint's values to the given variables, or to the given optimizers' (already
    built) variables; a missing, extra or mis-shaped array is an error, never a silent skip."""
    expected = _archive_variables(variables or {}, optimizers or {})
    prefixes = ([MODEL] if variables else []) + ([OPTIMIZER] if optimizers else [])
    stored = {key for key in checkpoint.arrays if key.startswith(tuple(prefixes))}
    if stored != set(expected):
        missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
        raise CheckpointError(f"{checkpoint.directory} does not fit this model (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, variable in expected.items():
        value = checkpoint.arrays[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(f"{checkpoint.directory}: {key} has shape {value.shape}, the model's is {tuple(variable.shape)}")
        variable.assign(value.astype(np.dtype(variable.dtype)))


def first_epoch(progress: Progress | None, stage: str, stage_epochs: int) -> int | None:
    """The epoch a stage starts at: 1 for a stage the checkpoint had not reached, the one after the
    checkpoint's in the stage it was written in, None for a stage already over."""
    if progress is None or STAGES.index(stage) > STAGES.index(progress.stage):
        return 1
    if stage != progress.stage or progress.stopped or progress.epoch >= stage_epochs:
        return None
    return progress.epoch + 1
