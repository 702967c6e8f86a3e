"""How specific a set of captions is, beside how well it scores: BLEU and CIDEr-D reward the safe,
frequent phrase, so a model can score well while saying "a man and a woman" of a photo of a baby.

For one caption per photo: how many captions are distinct, how many distinct words they use (the
"vocabulary used"), their mean length in words, and how often a caption puts a person in a photo
none of whose references mentions one. For comparison, the vocabulary and length of one human
reference per photo. Words are counted after `captioning.text.tokenize` (lower case, letters), the
normalisation the model's own words went through. Pure Python and cheap: training computes it
every epoch.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from captioning.text import tokenize

# Words that name a person, in the singular and the plural. The list is broad on purpose: a photo
# counts as "no reference mentions people" only when none of its references uses any of these, so
# a reference's "skier", "crowd" or "he" keeps a caption's "man" from counting as invented. Words
# that as often name an animal or a thing are left out ("couple", "group", "team", "boxer", "his",
# "they"). A possessive counts as its word ("man's" as "man").
PERSON_WORDS = frozenset(
    """
    man men woman women boy boys girl girls person persons people child children kid kids baby babies
    toddler toddlers guy guys lady ladies gentleman gentlemen adult adults teenager teenagers teen teens
    youth youths infant infants someone somebody he she him crowd family audience spectators
    player players skier skiers snowboarder snowboarders skateboarder skateboarders surfer surfers
    biker bikers cyclist cyclists bicyclist bicyclists motorcyclist motorcyclists rider riders
    climber climbers runner runners swimmer swimmers dancer dancers worker workers performer
    performers athlete athletes musician musicians singer singers drummer guitarist wrestler wrestlers
    soldier soldiers officer officers policeman policemen fisherman fishermen cowboy cowboys
    tourist tourists pedestrian pedestrians student students
    """.split()
)


def mentions_people(words: Sequence[str]) -> bool:
    return any(word.removesuffix("'s") in PERSON_WORDS for word in words)


@dataclass(frozen=True)
class Specificity:
    """Figures for one caption per photo (`caption_specificity`)."""

    distinct_captions: int  # different caption texts
    distinct_share: float  # distinct_captions / captions
    vocabulary: int  # different words over all captions
    mean_words: float
    unsupported_people: int  # captions naming a person on a photo none of whose references does
    unsupported_people_share: float  # unsupported_people / captions

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


SPECIFICITY_KEYS = tuple(Specificity.__dataclass_fields__)


def caption_specificity(captions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> Specificity:
    """Figures for `captions` (photo → caption); `references` (photo → its references) must cover them."""
    words = {name: tokenize(text) for name, text in captions.items()}
    count = max(len(words), 1)
    distinct = len({" ".join(w) for w in words.values()})
    unsupported = sum(
        mentions_people(w) and not any(mentions_people(tokenize(r)) for r in references[name]) for name, w in words.items()
    )
    return Specificity(
        distinct_captions=distinct,
        distinct_share=distinct / count,
        vocabulary=len({word for w in words.values() for word in w}),
        mean_words=sum(len(w) for w in words.values()) / count,
        unsupported_people=unsupported,
        unsupported_people_share=unsupported / count,
    )


def reference_specificity(references: Mapping[str, Sequence[str]]) -> dict[str, float | int]:
    """What people write, for comparison: the vocabulary and mean length of one reference per photo
    (the k-th reference of every photo, averaged over k, so no one annotator's order decides), and
    how many photos no reference puts a person in."""
    columns = min((len(refs) for refs in references.values()), default=0)
    vocabularies, lengths = [], []
    for k in range(columns):
        words = [tokenize(refs[k]) for refs in references.values()]
        vocabularies.append(len({word for w in words for word in w}))
        lengths.append(sum(len(w) for w in words) / len(words))
    return {
        "photos": len(references),
        "vocabulary_one_reference": sum(vocabularies) / columns if columns else 0.0,
        "mean_words": sum(lengths) / columns if columns else 0.0,
        "photos_without_people": sum(not any(mentions_people(tokenize(r)) for r in refs) for refs in references.values()),
    }
