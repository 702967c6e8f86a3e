"""Which feedback a retraining may learn from: nobody can steer the model with volume or junk.

Everything stays in the store (an admin can look at it with /feedback); this only decides what is
trained on, and counts what was left out and why. Each example gets at most one reason, the first
that applies, in this order:

- excluded_user: an admin excluded its author (/exclude), or every 👍 on the caption came from one;
- empty: no words left after normalisation (only digits, punctuation, emoji);
- too_long: more words than a caption has (`max_words`);
- out_of_vocabulary: more than `max_unknown_share` of its words are not in the active vocabulary
  (a few new words are how the model learns them; mostly unknown words are gibberish or another
  language);
- duplicate: the same normalised text again for the same photo (from anyone: a second copy only
  weighs that caption double), or again from the same user for another photo (a text pasted under
  many photos describes none of them);
- over_user_cap: the author already has `max_corrections_per_user` corrections kept. Examples come
  oldest first, so a user's oldest corrections are kept and the choice is the same every run; new
  corrections never push out old ones.

👍 captions are the model's own words, so only exclusion applies to them.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass

from captioning.text import tokenize
from store.feedback import FeedbackExample
from training.feedback_data import photo_name

EXCLUSION_REASONS = ("excluded_user", "empty", "too_long", "out_of_vocabulary", "duplicate", "over_user_cap")


@dataclass(frozen=True)
class FeedbackRules:
    """Limits from the settings (RETRAIN_MAX_CORRECTION_WORDS, …) and the active model's vocabulary."""

    vocabulary: Container[str]
    max_words: int = 30
    max_unknown_share: float = 0.5
    max_corrections_per_user: int = 50


def exclusion_reason(words: list[str], rules: FeedbackRules) -> str | None:
    """Why a correction's words are not fit to train on, judged on the text alone; None if they are."""
    if not words:
        return "empty"
    if len(words) > rules.max_words:
        return "too_long"
    unknown = sum(1 for word in words if word not in rules.vocabulary)
    if unknown > rules.max_unknown_share * len(words):
        return "out_of_vocabulary"
    return None


def screen_feedback(
    examples: Sequence[FeedbackExample], rules: FeedbackRules
) -> tuple[list[FeedbackExample], dict[str, int]]:
    """(the examples to train on, in their order; how many were left out for each reason)."""
    excluded: Counter[str] = Counter({reason: 0 for reason in EXCLUSION_REASONS})
    kept: list[FeedbackExample] = []
    seen_for_photo: set[tuple[str, str]] = set()
    seen_from_user: set[tuple[int | None, str]] = set()
    per_user: Counter[int | None] = Counter()
    for example in examples:
        if example.user_excluded:
            excluded["excluded_user"] += 1
            continue
        if example.source != "correction":
            kept.append(example)
            continue
        words = tokenize(example.text)
        text = " ".join(words)
        photo = (photo_name(example), text)
        author = (example.user_id, text)
        reason = exclusion_reason(words, rules)
        if reason is None and (photo in seen_for_photo or author in seen_from_user):
            reason = "duplicate"
        if reason is None and per_user[example.user_id] >= rules.max_corrections_per_user:
            reason = "over_user_cap"
        if reason is not None:
            excluded[reason] += 1
            continue
        seen_for_photo.add(photo)
        seen_from_user.add(author)
        per_user[example.user_id] += 1
        kept.append(example)
    return kept, dict(excluded)
