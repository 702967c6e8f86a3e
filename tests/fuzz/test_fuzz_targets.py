"""A short fixed-seed fuzz run of every target (a few hundred inputs each, the same ones every
run): mutated seeds and random bytes give a result that keeps its promises, or the target's
declared error, and nothing else. `python benchmarks/fuzz.py` runs the same targets long; each
input it crashed on is kept in tests/data/fuzz-crashes/ once fixed, and replayed here."""
from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_targets import EDIT_KINDS, TARGETS, Target, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 300
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on malformed files
EDITS = st.lists(
    st.tuples(st.integers(0, EDIT_KINDS - 1), st.integers(0, 2**20), st.integers(0, 64), st.binary(max_size=8)),
    min_size=1,
    max_size=6,
)


def fuzz_inputs(target: Target) -> st.SearchStrategy[bytes]:
    mutated = st.tuples(st.sampled_from(list(target.seeds())), EDITS).map(lambda pair: mutate(*pair))
    return st.one_of(mutated, st.binary(max_size=512))


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_fuzzed_input_gives_a_result_that_keeps_its_promises_or_the_declared_error_only(target):
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(fuzz_inputs(target))
    def run(data: bytes) -> None:
        try:
            target.check(data)
        except target.declared:
            pass

    run()


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_every_seed_passes_its_check_unchanged(target):
    for seed in target.seeds():
        try:
            target.check(seed)
        except target.declared:
            assert target.name == "photo_decoding"  # GIF, BMP and TIFF seeds are refused there


CRASHES = Path(__file__).resolve().parents[1] / "data" / "fuzz-crashes"


@pytest.mark.parametrize("reproducer", sorted(CRASHES.glob("*.bin")), ids=lambda path: path.stem)
def test_every_input_a_long_fuzz_run_crashed_on_now_gets_a_result_or_the_declared_error(reproducer):
    target = next(target for target in TARGETS if reproducer.stem.startswith(target.name + "-"))
    try:
        target.check(reproducer.read_bytes())
    except target.declared:
        pass
