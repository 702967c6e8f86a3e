"""Text normalisation and the vocabulary."""
from captioning.text import Vocabulary, normalize_caption


def test_normalisation_keeps_one_letter_words_and_drops_punctuation_and_digits():
    assert normalize_caption("A dog, 2 cats & a man's T-shirt!") == "a dog cats a man's t shirt"


def test_vocabulary_counts_words_and_puts_special_tokens_first():
    vocab = Vocabulary.build(["a dog runs", "a dog sits", "a cat"], min_count=2)
    assert vocab.words == ["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]
    assert vocab.pad_id == 0


def test_encode_decode_round_trip_with_unknown_words():
    vocab = Vocabulary.build(["a dog runs on grass"] * 5, min_count=1)
    ids = vocab.encode("A dog runs on the grass.")
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id
    assert vocab.decode(ids[1:]) == ["a", "dog", "runs", "on", "<unk>", "grass"]


def test_vocabulary_json_round_trip_and_extension_keeps_ids(tmp_path):
    vocab = Vocabulary.build(["a red square on white"] * 5, min_count=1)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.words == vocab.words
    grown = loaded.extend(["crimson", "a", "crimson"])
    assert grown.words[: len(vocab)] == vocab.words and grown.words[-1] == "crimson" and len(grown) == len(vocab) + 1
