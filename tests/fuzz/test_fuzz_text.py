"""Callback data and correction text under hypothesis's own text strategies (every Unicode
category, lone surrogates included): valid button data round-trips, anything else parses to None,
and a correction comes out folded and normalised within bounds."""
from __future__ import annotations

from fuzz_targets import check_callback_text, check_correction
from hypothesis import given, settings
from hypothesis import strategies as st

from service.feedback_buttons import (
    CancelPress,
    FeedbackPress,
    callback_data,
    cancel_callback_data,
    parse_callback_data,
    parse_cancel_callback_data,
)

FIXED = settings(max_examples=300, derandomize=True, database=None, deadline=None)
CAPTION_IDS = st.integers(1, 10**18 - 1)
TOKENS = st.text("0123456789abcdef", min_size=8, max_size=8)
# hypothesis never draws lone surrogates itself; JSON (so the Bot API) can carry them
CHARACTERS = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))


@FIXED
@given(CAPTION_IDS, st.sampled_from(["up", "down", "fix"]), TOKENS)
def test_every_feedback_and_cancel_button_round_trips_and_is_never_taken_for_the_other(caption_id, action, token):
    feedback, cancel = callback_data(caption_id, action), cancel_callback_data(caption_id, token)
    assert max(len(feedback.encode()), len(cancel.encode())) <= 64
    assert parse_callback_data(feedback) == FeedbackPress(caption_id, action)
    assert parse_cancel_callback_data(cancel) == CancelPress(caption_id, token)
    assert parse_cancel_callback_data(feedback) is None and parse_callback_data(cancel) is None


@FIXED
@given(st.one_of(st.text(CHARACTERS), st.from_regex(r"[rx][0-9]:[0-9]{0,20}:[a-z0-9]{0,9}", fullmatch=True)))
def test_any_other_text_parses_to_none_or_to_a_press_that_re_encodes_to_it(text):
    check_callback_text(text)


@FIXED
@given(st.text(CHARACTERS, max_size=2000))
def test_a_correction_is_folded_and_normalised_within_bounds_whatever_its_characters(text):
    check_correction(text)
