"""Beam search with repeated-phrase blocking: a decoder whose favourite caption repeats "a bench"
gets its second choice at that word, while function-word bigrams ("on a") may repeat."""
import numpy as np
import tensorflow as tf

from captioning.search import beam_search
from captioning.text import Vocabulary

VOCAB = Vocabulary("a man on bench hill".split())
FAVOURITE = "a man on a bench on a bench".split()
SECOND_CHOICE = {7: "hill"}  # position → the decoder's second-best word there


class ScriptedDecoder:
    """Stands in for CompiledDecoder: the LSTM state h holds the position, and each position
    strongly prefers one word of FAVOURITE (then <end>)."""

    def __init__(self):
        table = np.full((len(FAVOURITE) + 1, len(VOCAB)), -9.0)
        for position, word in enumerate([*FAVOURITE, "<end>"]):
            table[position, VOCAB.index[word]] = -0.1
        for position, word in SECOND_CHOICE.items():
            table[position, VOCAB.index[word]] = -1.0
        self.table = table

    def start(self, grid):
        n = grid.shape[0]
        return tf.zeros((n, 1, 1)), tf.zeros((n, 1, 1)), tf.zeros((n, 1)), tf.zeros((n, 1))

    def step(self, words, h, c, features, keys):
        position = np.minimum(h.numpy()[:, 0].astype(int), len(self.table) - 1)
        logp = tf.nn.log_softmax(tf.constant(self.table[position], tf.float32))
        return logp, h + 1.0, c, tf.ones((len(words), 1))


def caption(**options) -> list[str]:
    grid = np.zeros((1, 1, 1), np.float32)
    hypothesis = beam_search(ScriptedDecoder(), grid, VOCAB.start_id, VOCAB.end_id, max_words=12, beam=3, **options)[0]
    return VOCAB.decode(hypothesis.ids)


def test_without_blocking_the_repeated_phrase_stays():
    assert caption() == FAVOURITE


def test_blocking_replaces_the_repeated_content_bigram_and_keeps_the_repeated_on_a():
    assert caption(content_words=VOCAB.content_words()) == "a man on a bench on a hill".split()


def test_content_words_are_the_vocabulary_minus_function_words_and_special_tokens():
    content = dict(zip(VOCAB.words, VOCAB.content_words()))
    assert [w for w, is_content in content.items() if is_content] == ["man", "bench", "hill"]
