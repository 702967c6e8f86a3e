"""Training the encoder's top with the decoder: the top learns, batch-norm statistics stay, and the
bundle carries what was trained."""
import numpy as np
import pytest

from captioning import metrics

from captioning.bundle import load_decoder, save_bundle
from captioning.encoder_top import TOP_WEIGHTS_FILE, EncoderTopConfig, last_block, load_top_weights, top_model
from captioning.encoders import build_encoder
from captioning.testing import write_random_bundle
from captioning.text import Vocabulary
from training.features import FeatureCache
from training.pipeline import resume_on_flickr8k, train_on_flickr8k
from training.train import EncoderTop, TrainConfig, Trainer

from test_resume import interrupt_after
from test_train_smoke import make_kaggle_flickr8k
from tiny_trainer import TINY, TRAIN, VAL, WORDS
from training.checkpoint import read_checkpoint


def top_trainer(**config) -> tuple[Trainer, EncoderTop]:
    """Six photos' cached activations entering Lite0's last block (random, ReLU6-like ranges)."""
    encoder = build_encoder("efficientnet_lite0")
    first_block = last_block(encoder.backbone)
    top = EncoderTop(EncoderTopConfig(first_block), top_model(encoder.backbone, first_block))
    height, width, channels = top.model.input_shape[1:]
    rng = np.random.default_rng(0)
    activations = rng.uniform(-2, 4, size=(6, height * width, channels)).astype(np.float16)
    cache = FeatureCache([f"img{i}" for i in range(6)], activations)
    settings = {"decoder": TINY, "batch_size": 4, "epochs": 2, "finetune_encoder_from": first_block, "encoder_learning_rate_scale": 1.0, **config}
    return Trainer(TrainConfig(**settings), Vocabulary(WORDS), cache, encoder_top=top), top


def variables_by_path(model) -> dict[str, np.ndarray]:
    return {v.path: v.numpy().copy() for v in model.weights}


def test_the_top_learns_with_the_decoder_and_the_bundle_carries_it(tmp_path):
    trainer, top = top_trainer(epochs=1)
    before = variables_by_path(top.model)
    result = trainer.fit(TRAIN, VAL, tmp_path, "tiny-top")
    after = variables_by_path(top.model)
    trained = {v.path for v in top.model.trainable_variables}
    assert trained and all(np.abs(after[p] - before[p]).max() > 0 for p in trained)
    for path in set(before) - trained:  # batch norm keeps ImageNet's statistics
        np.testing.assert_array_equal(after[path], before[path])

    config, _, _ = load_decoder(result.bundle_dir)
    assert config.encoder_top == top.config
    fresh = build_encoder("efficientnet_lite0")
    load_top_weights(fresh.backbone, result.bundle_dir / TOP_WEIGHTS_FILE)
    saved = variables_by_path(top_model(fresh.backbone, top.config.first_block))
    assert saved.keys() == after.keys()
    for path, value in after.items():
        np.testing.assert_array_equal(saved[path], value)


def test_self_critical_epochs_train_the_top_too(tmp_path):
    trainer, top = top_trainer(epochs=1, scst_epochs=1, scst_images_per_batch=4)
    after_stage: dict[str, dict] = {}
    record = lambda event: after_stage.setdefault(event["stage"], variables_by_path(top.model))  # noqa: E731
    trainer.fit(TRAIN, VAL, tmp_path, "tiny-top", on_progress=record)
    moved = [p for p in after_stage["xe"] if np.abs(after_stage["scst"][p] - after_stage["xe"][p]).max() > 0]
    assert {v.path for v in top.model.trainable_variables} <= set(moved)


def test_the_decoder_reads_the_grid_the_top_makes_of_the_cached_activations():
    trainer, top = top_trainer()
    names = ["img1", "img4"]
    activations = trainer.cache.grid[trainer.cache.rows(names)].astype(np.float32)
    expected = top.model(activations.reshape(2, *top.model.input_shape[1:])).numpy().reshape(2, -1, top.model.output_shape[-1])
    np.testing.assert_allclose(trainer.grid(names), expected, atol=1e-5)
    assert trainer.decoder.config.feature_channels == top.model.output_shape[-1]


def test_a_fine_tuning_run_stopped_and_resumed_ends_with_the_uninterrupted_runs_top(tmp_path):
    config = dict(epochs=2, scst_epochs=1, scst_images_per_batch=2, scst_samples=2, learning_rate=1e-2, ema_momentum=0.5)
    with pytest.MonkeyPatch.context() as patch:  # the NLTK tokenizer: no JVM per val score
        patch.setattr(metrics, "java_available", lambda: False)
        whole, whole_top = top_trainer(**config)
        whole.fit(TRAIN, VAL, tmp_path / "whole", "tiny-top")
        stopped, _ = top_trainer(**config)
        with pytest.raises(KeyboardInterrupt):
            stopped.fit(TRAIN, VAL, tmp_path / "parts", "tiny-top", on_progress=interrupt_after(1))
        resumed, resumed_top = top_trainer(**config)
        resumed.fit(TRAIN, VAL, tmp_path / "parts", "tiny-top", resume=read_checkpoint(tmp_path / "parts"))
    want, got = variables_by_path(whole_top.model), variables_by_path(resumed_top.model)
    for path, value in want.items():
        np.testing.assert_allclose(got[path], value, rtol=0, atol=1e-5, err_msg=path)
    for got_weights, want_weights in zip(resumed.decoder.get_weights(), whole.decoder.get_weights(), strict=True):
        np.testing.assert_allclose(got_weights, want_weights, rtol=0, atol=1e-5)
    assert any(key.startswith("optimizer/encoder_top/") for key in read_checkpoint(tmp_path / "parts").arrays)


def read_archive(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.slow
def test_a_run_from_a_fine_tuned_parent_carries_its_top_unchanged_also_when_resumed(tmp_path):
    make_kaggle_flickr8k(tmp_path / "flickr8k", images_per_split=(8, 4))
    parent = write_random_bundle(tmp_path / "parent", "efficientnet_lite0")
    encoder = build_encoder("efficientnet_lite0")
    top = top_model(encoder.backbone, last_block(encoder.backbone))
    for variable in top.trainable_variables:
        variable.assign(variable.numpy() * 1.1)
    parent_config, vocab, decoder = load_decoder(parent)
    parent_config.encoder_top = EncoderTopConfig(last_block(encoder.backbone))
    save_bundle(parent, parent_config, vocab, decoder, top)
    config = TrainConfig(encoder="efficientnet_lite0", epochs=2, batch_size=4, min_word_count=1)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_on_flickr8k(tmp_path / "flickr8k", tmp_path / "features", run_dir, config, "child", init_from=parent,
                          on_progress=interrupt_after(1))
    result = resume_on_flickr8k(run_dir, read_checkpoint(run_dir))
    assert [record["epoch"] for record in result.history] == [1, 2]
    child_config, _, _ = load_decoder(result.bundle_dir)
    assert child_config.encoder_top == parent_config.encoder_top
    assert child_config.training["parent"]["version"] == parent_config.version
    want, got = read_archive(parent / TOP_WEIGHTS_FILE), read_archive(result.bundle_dir / TOP_WEIGHTS_FILE)
    assert got.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
