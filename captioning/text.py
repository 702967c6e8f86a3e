"""Caption text: normalisation and the vocabulary.

Normalisation keeps one-letter words ("a" is in most references; dropping it costs BLEU) and drops
punctuation and digits, which the references rarely agree on.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIAL_TOKENS = (PAD, START, END, UNK)
_NOT_LETTERS = re.compile(r"[^a-z' ]+")


def as_sentence(text: str) -> str:
    """"a dog runs on grass" -> "A dog runs on grass.": a caption as the chat and the command line show
    it (the stored caption stays as the model said it)."""
    text = text.strip()
    if not text:
        return "I'm not sure what this shows."
    if text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:]


def normalize_caption(text: str) -> str:
    """Lower-case; keep letters, apostrophes inside words and single spaces."""
    text = _NOT_LETTERS.sub(" ", text.lower().replace("-", " "))
    words = [word.strip("'") for word in text.split()]
    return " ".join(word for word in words if word)


def tokenize(text: str) -> list[str]:
    return normalize_caption(text).split()


# Words a caption may rightly repeat ("a man in a red shirt on a bench"); see Vocabulary.content_words.
FUNCTION_WORDS = frozenset(
    "a an the and or in on of with at to by for from into onto near through over under behind across "
    "up down out off while as is are his her their its".split()
)


class Vocabulary:
    """Word ↔ id, with the four special tokens first (pad is 0 so masks are `ids != 0`)."""

    def __init__(self, words: Iterable[str]) -> None:
        words = list(words)
        if tuple(words[:4]) != SPECIAL_TOKENS:
            words = list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS]
        self.words: list[str] = words
        self.index: dict[str, int] = {word: i for i, word in enumerate(words)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5) -> "Vocabulary":
        """Words seen at least `min_count` times, most frequent first (ties alphabetical, so it is deterministic)."""
        counts = Counter(word for caption in captions for word in tokenize(caption))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIAL_TOKENS) + kept)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @property
    def pad_id(self) -> int:
        return self.index[PAD]

    @property
    def start_id(self) -> int:
        return self.index[START]

    @property
    def end_id(self) -> int:
        return self.index[END]

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    def content_words(self) -> np.ndarray:
        """(vocab,) bool: True for words a caption should not repeat in the same phrase (not a
        function word, not a special token); beam search blocks repeated bigrams containing one."""
        return np.array([w not in FUNCTION_WORDS and w not in SPECIAL_TOKENS for w in self.words])

    def encode(self, caption: str, max_words: int | None = None) -> list[int]:
        """<start> w1 … wn <end>, unknown words as <unk>, at most `max_words` words."""
        words = tokenize(caption)[:max_words]
        return [self.start_id, *(self.index.get(w, self.unk_id) for w in words), self.end_id]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to the first <end>, without special tokens."""
        words = []
        for i in ids:
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.start_id):
                words.append(self.words[i])
        return words

    def extend(self, new_words: Iterable[str]) -> "Vocabulary":
        """A vocabulary with new words appended; existing ids stay, so trained rows keep their meaning."""
        return Vocabulary(self.words + [w for w in dict.fromkeys(new_words) if w not in self.index])

    def to_json(self) -> str:
        return json.dumps({"words": self.words}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        return cls(json.loads(text)["words"])

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
