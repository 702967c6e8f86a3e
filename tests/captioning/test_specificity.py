"""Specificity figures on hand-made captions, each value counted by hand."""
import pytest

from captioning.specificity import PERSON_WORDS, caption_specificity, mentions_people, reference_specificity

REFERENCES = {
    "dog.jpg": ["A brown dog runs on the grass.", "The dog is running outside"],
    "baby.jpg": ["A baby sleeps in a crib.", "An infant is asleep"],
    "skier.jpg": ["A skier jumps.", "Someone skis down a slope"],
    "beach.jpg": ["Waves on an empty beach.", "The sea at sunset"],
}


def test_counts_distinct_captions_words_and_length():
    captions = {
        "dog.jpg": "a dog runs on the grass",  # 6 words
        "baby.jpg": "a man and a woman",  # 5 words
        "skier.jpg": "a man and a woman",  # the same caption again
        "beach.jpg": "a beach at sunset",  # 4 words
    }
    figures = caption_specificity(captions, REFERENCES)
    assert figures.distinct_captions == 3
    assert figures.distinct_share == 0.75
    # a dog runs on the grass man and woman beach at sunset
    assert figures.vocabulary == 12
    assert figures.mean_words == 5.0


def test_a_person_counts_as_unsupported_only_where_no_reference_names_one():
    captions = {
        "dog.jpg": "a man throws a ball to a dog",  # no reference names a person: unsupported
        "baby.jpg": "a man and a woman",  # "baby" and "infant" are person words: supported
        "skier.jpg": "a man skis down a hill",  # "skier" / "someone": supported
        "beach.jpg": "a woman's hat on the beach",  # possessive of a person word: unsupported
    }
    figures = caption_specificity(captions, REFERENCES)
    assert figures.unsupported_people == 2
    assert figures.unsupported_people_share == 0.5


def test_captions_without_people_are_never_unsupported():
    captions = {"dog.jpg": "a dog runs", "beach.jpg": "the sea at sunset"}
    figures = caption_specificity(captions, REFERENCES)
    assert figures.unsupported_people == 0
    assert figures.to_dict() == {
        "distinct_captions": 2,
        "distinct_share": 1.0,
        "vocabulary": 7,
        "mean_words": 3.5,
        "unsupported_people": 0,
        "unsupported_people_share": 0.0,
    }


def test_person_words_match_whole_words_and_possessives_only():
    assert mentions_people(["a", "boy's", "kite"])
    assert mentions_people(["two", "skateboarders"])
    assert not mentions_people(["a", "manhole", "cover"])
    assert not mentions_people(["a", "couple", "of", "dogs"])
    assert {"man", "woman", "boy", "girl", "person", "people", "child", "baby", "men", "women"} <= PERSON_WORDS


def test_reference_figures_average_one_reference_per_photo_over_the_positions():
    figures = reference_specificity(REFERENCES)
    # first references: "a brown dog runs on the grass" "a baby sleeps in a crib" "a skier jumps"
    # "waves on an empty beach": 7 + 6 + 3 + 5 words, 17 distinct
    # second references: "the dog is running outside" "an infant is asleep" "someone skis down a slope"
    # "the sea at sunset": 5 + 4 + 5 + 4 words, 16 distinct
    assert figures["vocabulary_one_reference"] == 16.5
    assert figures["mean_words"] == pytest.approx((21 / 4 + 18 / 4) / 2)
    assert figures["photos"] == 4
    assert figures["photos_without_people"] == 2  # the dog and the beach


def test_no_captions_give_zeros_not_an_error():
    figures = caption_specificity({}, REFERENCES)
    assert (figures.distinct_captions, figures.vocabulary, figures.mean_words, figures.unsupported_people_share) == (0, 0, 0.0, 0.0)
