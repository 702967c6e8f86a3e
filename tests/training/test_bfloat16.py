"""bfloat16 training: the same model within bfloat16's precision, float32 weights in the bundle."""
import numpy as np
import tensorflow as tf

from captioning.bundle import load_decoder
from captioning.search import CompiledDecoder, greedy_search
from captioning.text import Vocabulary
from tiny_trainer import WORDS, tiny_trainer


def test_bfloat16_computes_the_float32_loss_to_bfloat16_precision():
    exact, fast = tiny_trainer(bfloat16=False), tiny_trainer(bfloat16=True)
    fast.decoder.set_weights(exact.decoder.get_weights())
    assert all(w.dtype == np.float32 for w in fast.decoder.get_weights())
    tokens = tf.constant(np.array([Vocabulary(WORDS).encode("a dog runs on the grass")] * 2, np.int32))
    grid = tf.cast(tf.gather(exact.features, [0, 1]), tf.float32)
    losses = [float(t.decoder.sequence_loss(grid, tokens, tf.ones(2))[1]) for t in (exact, fast)]
    assert fast.decoder.feature_projection.compute_dtype == "bfloat16"
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-2)
    assert losses[1] != losses[0]  # it really did compute in bfloat16


def test_a_bfloat16_run_saves_a_float32_bundle_that_captions(tmp_path):
    run = tiny_trainer(bfloat16=True, epochs=2, scst_epochs=1, scst_images_per_batch=3, scst_samples=2, min_word_count=1)
    train = {f"img{i}": ["a dog runs on the grass", "a man sits"] for i in range(4)}
    val = {f"img{i}": train[f"img{i - 4}"] for i in (4, 5)}
    result = run.fit(train, val, tmp_path / "run", "tiny-bf16")
    assert [r["stage"] for r in result.history] == ["xe", "xe", "scst"]
    _, vocab, decoder = load_decoder(result.bundle_dir)
    assert decoder.feature_projection.compute_dtype == "float32"
    hyps = greedy_search(CompiledDecoder(decoder), np.asarray(run.grid(["img4"])), vocab.start_id, vocab.end_id, 8)
    assert all(0 <= i < len(vocab) for i in hyps[0].ids)


def test_native_bfloat16_is_read_off_the_cpu_flags():
    from training.cpu import cpu_has_bfloat16

    epyc_zen4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
    xeon_amx = "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n"
    avx2_only = "flags\t\t: fpu sse2 avx avx2 fma f16c\nbugs\t\t: avx512_bf16_is_not_a_flag_here\n"
    assert cpu_has_bfloat16(epyc_zen4) and cpu_has_bfloat16(xeon_amx)
    assert not cpu_has_bfloat16(avx2_only) and not cpu_has_bfloat16("")
