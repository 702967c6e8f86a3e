"""Caption metrics as the COCO caption toolkit computes them (pycocoevalcap): BLEU-1..4 and CIDEr-D.

Captions are first tokenised with the toolkit's Stanford PTB tokenizer when a Java runtime exists;
otherwise NLTK's Treebank tokenizer (the same PTB conventions) with the toolkit's punctuation list.
Every score says which tokenizer produced it.

`CiderD` is a reward for self-critical training: the same formula with document frequencies fixed
from a training corpus and reference vectors cached per image, so scoring thousands of sampled
captions a batch is cheap. A test checks it against pycocoevalcap on the same data.
"""
from __future__ import annotations

import math
import shutil
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from nltk.tokenize import TreebankWordTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS, PTBTokenizer

_TREEBANK = TreebankWordTokenizer()


def java_available() -> bool:
    return shutil.which("java") is not None


def _treebank(text: str) -> str:
    tokens = _TREEBANK.tokenize(text.lower().replace("\n", " "))
    return " ".join(t for t in tokens if t not in PUNCTUATIONS)


def tokenize_captions(captions: Mapping[str, Sequence[str]], use_java: bool | None = None) -> tuple[dict[str, list[str]], str]:
    """{id: [caption…]} → ({id: [tokenised…]}, tokenizer name)."""
    if use_java is None:
        use_java = java_available()
    if use_java:
        nested = {key: [{"caption": c} for c in values] for key, values in captions.items()}
        return PTBTokenizer().tokenize(nested), "ptb-stanford-corenlp"
    return {key: [_treebank(c) for c in values] for key, values in captions.items()}, "ptb-nltk-treebank"


def score_captions(references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str], use_java: bool | None = None) -> dict:
    """BLEU-1..4 and CIDEr-D of one hypothesis per image against its references, COCO-toolkit style."""
    keys = sorted(hypotheses)
    refs, tokenizer = tokenize_captions({k: list(references[k]) for k in keys}, use_java)
    hyps, _ = tokenize_captions({k: [hypotheses[k]] for k in keys}, use_java)
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    cider, _ = Cider().compute_score(refs, hyps)
    scores = {f"BLEU-{n}": float(b) for n, b in enumerate(bleu, start=1)}
    scores["CIDEr"] = float(cider)
    scores["tokenizer"] = tokenizer
    scores["images"] = len(keys)
    return scores


def _ngrams(words: Sequence[str], n: int = 4) -> Counter:
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


class CiderD:
    """CIDEr-D (n = 1..4, σ = 6, clipped counts, ×10) with corpus document frequencies."""

    def __init__(
        self,
        corpus: Mapping[str, Sequence[Sequence[str]]],
        n: int = 4,
        sigma: float = 6.0,
        references: Mapping[str, Sequence[Sequence[str]]] | None = None,
    ) -> None:
        """Document frequencies from `corpus`; references are cached for the images of `corpus` and of
        `references` (images that may be scored without counting towards the frequencies)."""
        self.n, self.sigma = n, sigma
        self.document_frequency: Counter = Counter()
        for refs in corpus.values():
            self.document_frequency.update({gram for ref in refs for gram in _ngrams(ref, n)})
        self.log_corpus_size = math.log(float(len(corpus)))
        every = {**corpus, **(references or {})}
        self._references = {key: [self._vector(ref) for ref in refs] for key, refs in every.items()}

    def _vector(self, words: Sequence[str]):
        vec = [defaultdict(float) for _ in range(self.n)]
        norm = [0.0] * self.n
        for gram, tf in _ngrams(words, self.n).items():
            k = len(gram) - 1
            value = float(tf) * (self.log_corpus_size - math.log(max(1.0, self.document_frequency[gram])))
            vec[k][gram] = value
            norm[k] += value * value
        return vec, [math.sqrt(x) for x in norm], len(words)

    def _similarity(self, hyp, ref) -> np.ndarray:
        (vh, nh, lh), (vr, nr, lr) = hyp, ref
        values = np.zeros(self.n)
        for k in range(self.n):
            for gram, value in vh[k].items():
                values[k] += min(value, vr[k].get(gram, 0.0)) * vr[k].get(gram, 0.0)
            if nh[k] != 0 and nr[k] != 0:
                values[k] /= nh[k] * nr[k]
            values[k] *= math.e ** (-((lh - lr) ** 2) / (2 * self.sigma**2))
        return values

    def score(self, key: str, words: Sequence[str]) -> float:
        """CIDEr-D of one tokenised caption against the cached references of image `key`."""
        hyp = self._vector(words)
        refs = self._references[key]
        total = sum(self._similarity(hyp, ref) for ref in refs)
        return float(np.mean(total) / len(refs) * 10.0)
