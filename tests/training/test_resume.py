"""Training that spans sessions: a run stopped after any epoch and resumed from its checkpoint ends
with the weights, bundle and history of the same run left uninterrupted, in either stage; a missing
or damaged checkpoint, or one of another run, is refused with a message that says so."""
import json
import shutil

import numpy as np
import pytest

from captionbot.cli import main
from captioning import metrics
from captioning.captioner import Captioner
from captioning.bundle import WEIGHTS_FILE
from test_train_smoke import make_kaggle_flickr8k
from tiny_trainer import TINY, TRAIN, VAL, tiny_trainer
from training.checkpoint import ARRAYS_FILE, CHECKPOINT_DIR, STATE_FILE, CheckpointError, read_checkpoint
from training.pipeline import train_on_flickr8k
from training.train import TrainConfig

# mirrored views, dropout, moving averages in both stages and a learning rate that moves the
# weights: every piece of state a resume has to carry over or draw again shows in the result
CONFIG = dict(mirror=True, epochs=2, scst_epochs=2, scst_images_per_batch=2, scst_samples=2, learning_rate=1e-2,
              scst_learning_rate=1e-2, ema_momentum=0.5, scst_ema_momentum=0.5, patience=5)


def interrupt_after(epochs: int):
    """A progress callback that stops the run like Ctrl-C once `epochs` epochs have ended."""
    def on_progress(event: dict) -> None:
        if event["epoch"] == epochs:
            raise KeyboardInterrupt
    return on_progress


def resume_to_the_end(run_dir):
    trainer = tiny_trainer(**CONFIG)
    return trainer, trainer.fit(TRAIN, VAL, run_dir, "tiny", resume=read_checkpoint(run_dir))


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.fixture(scope="module", autouse=True)
def scores_without_java():
    """Val scores by the NLTK tokenizer: the Java one starts a JVM per call, seconds a run, and
    which tokenizer scores has nothing to do with resuming."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "java_available", lambda: False)
        yield


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run left alone, and a copy of its directory as it stood after each epoch."""
    run_dir, copies = tmp_path_factory.mktemp("uninterrupted"), tmp_path_factory.mktemp("after-epoch")
    trainer = tiny_trainer(**CONFIG)
    result = trainer.fit(TRAIN, VAL, run_dir, "tiny", on_progress=lambda event: shutil.copytree(run_dir, copies / str(event["epoch"])))
    return run_dir, [w.copy() for w in trainer.decoder.get_weights()], result, copies


def assert_same_run(run_dir, trainer, result, uninterrupted) -> None:
    expected_dir, expected_weights, expected, _ = uninterrupted
    for got, want in zip(trainer.decoder.get_weights(), expected_weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    with np.load(run_dir / "bundle" / WEIGHTS_FILE) as got, np.load(expected_dir / "bundle" / WEIGHTS_FILE) as want:
        for key in want.files:
            np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-3)  # float16 in a bundle
    # the optimizer state at the end too: the same step count, moments and moving averages
    got_state, want_state = read_checkpoint(run_dir), read_checkpoint(expected_dir)
    assert got_state.progress.finished and want_state.progress.finished
    assert set(got_state.arrays) == set(want_state.arrays)
    for key, value in want_state.arrays.items():
        np.testing.assert_allclose(got_state.arrays[key], value, rtol=0, atol=1e-5, err_msg=key)
    assert without_timing(result.history) == without_timing(expected.history)
    assert without_timing(json.loads((run_dir / "history.json").read_text())) == without_timing(expected.history)
    assert result.best_scores == expected.best_scores
    assert [(r["stage"], r["epoch"]) for r in result.history] == [("xe", 1), ("xe", 2), ("scst", 3), ("scst", 4)]


def test_a_run_stopped_after_its_first_epoch_and_resumed_ends_as_the_uninterrupted_run(tmp_path, uninterrupted):
    with pytest.raises(KeyboardInterrupt):
        tiny_trainer(**CONFIG).fit(TRAIN, VAL, tmp_path, "tiny", on_progress=interrupt_after(1))
    checkpoint = read_checkpoint(tmp_path)
    assert (checkpoint.progress.stage, checkpoint.progress.epoch, checkpoint.progress.finished) == ("xe", 1, False)
    trainer, result = resume_to_the_end(tmp_path)
    assert_same_run(tmp_path, trainer, result, uninterrupted)


def test_a_run_resumed_in_the_middle_of_self_critical_training_ends_as_the_uninterrupted_run(tmp_path, uninterrupted):
    *_, copies = uninterrupted
    run_dir = shutil.copytree(copies / "3", tmp_path / "run")  # stopped after the first SCST epoch
    assert (read_checkpoint(run_dir).progress.stage, read_checkpoint(run_dir).progress.epoch) == ("scst", 1)
    trainer, result = resume_to_the_end(run_dir)
    assert_same_run(run_dir, trainer, result, uninterrupted)


def test_a_missing_or_damaged_checkpoint_is_refused_with_a_clear_message(tmp_path, uninterrupted):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        read_checkpoint(tmp_path)
    run_dir, *_ = uninterrupted
    checkpoint = run_dir / CHECKPOINT_DIR
    for name, damage in ((ARRAYS_FILE, lambda data: data[: len(data) // 2]), (STATE_FILE, lambda data: data[:-10])):
        copy = tmp_path / name / CHECKPOINT_DIR
        copy.mkdir(parents=True)
        for file in checkpoint.iterdir():
            (copy / file.name).write_bytes(file.read_bytes())
        (copy / name).write_bytes(damage((copy / name).read_bytes()))
        with pytest.raises(CheckpointError, match="is damaged"):
            read_checkpoint(copy.parent)
    assert main(["train", "--resume", str(tmp_path / ARRAYS_FILE)]) == 1
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 1


def test_a_checkpoint_of_other_settings_is_refused_before_anything_is_trained(tmp_path, uninterrupted):
    run_dir, *_ = uninterrupted
    other = tiny_trainer(**{**CONFIG, "learning_rate": 1e-3})
    with pytest.raises(CheckpointError, match=r"other settings \(learning_rate\)"):
        other.fit(TRAIN, VAL, tmp_path, "tiny", resume=read_checkpoint(run_dir))
    assert not (tmp_path / CHECKPOINT_DIR).exists()


def test_the_command_says_a_finished_run_is_finished_and_refuses_other_settings(uninterrupted, capsys):
    run_dir, *_ = uninterrupted
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert "already finished" in capsys.readouterr().out
    assert main(["train", "--resume", str(run_dir), "--epochs", "30", "--seed", "2"]) == 1
    assert "--epochs, --seed" in capsys.readouterr().err
    assert main(["train", "--out", str(run_dir), "--version", "again"]) == 1
    assert "--resume" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_resumes_a_flickr8k_run_from_where_its_data_lies_now(tmp_path, capsys):
    make_kaggle_flickr8k(tmp_path / "flickr8k", images_per_split=(8, 4))
    config = TrainConfig(encoder="efficientnet_lite0", epochs=2, batch_size=4, min_word_count=1, decoder={**TINY, "max_words": 12})
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_on_flickr8k(tmp_path / "flickr8k", tmp_path / "features", run_dir, config, "squares-1", on_progress=interrupt_after(1))
    moved = (tmp_path / "flickr8k").rename(tmp_path / "moved")  # the data moved between the sittings
    assert main(["train", "--resume", str(run_dir), "--flickr8k", str(moved)]) == 0
    assert [(r["stage"], r["epoch"]) for r in json.loads((run_dir / "history.json").read_text())] == [("xe", 1), ("xe", 2)]
    checkpoint = read_checkpoint(run_dir)
    assert checkpoint.progress.finished and checkpoint.run["args"]["flickr8k"] == str(moved)
    assert Captioner.load(run_dir / "bundle").version == "squares-1"
    assert (run_dir / "training_curves.png").exists()
