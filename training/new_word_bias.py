"""How readily a retrained model says the words its users taught it: one bias offset, chosen on val.

The new-words warm-up trains only those words' embedding rows and output units; nothing else can
move, so the output units alone must tell the photos that call for a new word (the corrected kind)
from the rest, and they do it imperfectly. Measured on the shipped model with 300 corrected pencil
sketches: the kept warm-up epoch put "a pencil sketch of" on 48 % of new sketches but also on 7 % of
Flickr8k val photos, which cost val 0.005 BLEU-4; an offset of −1 on the new words' output biases
brought that to 2 % (BLEU-4 −0.002) while 29 % of new sketches kept the phrasing (docs/retraining.md).

So after training, the new words' biases are shifted by each offset in turn, and the offset whose
captions of the selection photos (val plus held-back corrected photos) score best among those that
pass the promotion rule is written into the bundle. The warm-up learns which photos call for a
word; the offset decides how sure the model must be before it says it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from captioning.captioner import Captioner
from captioning.metrics import score_captions

BIAS_VARIABLE = "out_vocab/bias"
# Captions of the selection photos → (whether they pass the promotion rule on val, val scores).
Gate = Callable[[dict[str, str]], tuple[bool, dict[str, float]]]


@dataclass(frozen=True)
class OffsetTrial:
    offset: float
    passes_gate: bool
    selection_cider: float
    val: dict[str, float]

    def to_dict(self) -> dict:
        return {"offset": self.offset, "passes_gate": self.passes_gate, "selection_CIDEr": self.selection_cider, "val": self.val}


def shift_bias(captioner: Captioner, word_ids: Sequence[int], offset: float, base: np.ndarray) -> None:
    """The decoder's output bias set to `base` with `offset` added for `word_ids`."""
    bias = np.array(base, copy=True)
    bias[list(word_ids)] += offset
    _bias_variable(captioner).assign(bias)


def choose_offset(
    captioner: Captioner,
    word_ids: Sequence[int],
    offsets: Sequence[float],
    caption: Callable[[Captioner], dict[str, str]],
    references: dict[str, list[str]],
    gate: Gate,
) -> tuple[float, list[OffsetTrial]]:
    """Try each offset on the new words' output biases; leave the captioner at the best one.

    `caption(captioner)` captions the selection photos as the epochs were scored (same search);
    best means: passes the gate, then the highest CIDEr on `references`; ties go to the offset
    listed first. Returns the chosen offset and every trial, for the report.
    """
    base = _bias_variable(captioner).numpy().copy()
    trials: list[OffsetTrial] = []
    for offset in offsets:
        shift_bias(captioner, word_ids, offset, base)
        captions = caption(captioner)
        passes, val_scores = gate(captions)
        cider = score_captions(references, captions)["CIDEr"]
        trials.append(OffsetTrial(float(offset), passes, float(cider), val_scores))
    best = max(trials, key=lambda t: (t.passes_gate, t.selection_cider))  # max keeps the first of equals
    shift_bias(captioner, word_ids, best.offset, base)
    return best.offset, trials


def _bias_variable(captioner: Captioner):
    for variable in captioner.decoder.weights:
        if variable.path == BIAS_VARIABLE:
            return variable
    raise KeyError(f"the decoder has no {BIAS_VARIABLE}")
