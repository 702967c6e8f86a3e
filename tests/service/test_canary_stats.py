"""The canary's arithmetic: a stable, even split of requests, and a one-sided test that ends a
worse canary and promotes one that is not significantly worse."""
from __future__ import annotations

import pytest
from scipy.stats import norm

from service.canary_stats import ArmCounts, decide, p_value_canary_lower, serves_canary


def test_at_half_200_requests_split_near_evenly_and_each_request_keeps_its_version():
    first = [serves_canary(request_id, "v2", 0.5) for request_id in range(1, 201)]
    again = [serves_canary(request_id, "v2", 0.5) for request_id in range(1, 201)]
    assert first == again
    assert 80 <= sum(first) <= 120


def test_a_larger_fraction_only_adds_requests_to_the_canary():
    at_20 = {r for r in range(1, 2001) if serves_canary(r, "v2", 0.2)}
    at_50 = {r for r in range(1, 2001) if serves_canary(r, "v2", 0.5)}
    assert at_20 < at_50
    assert 330 <= len(at_20) <= 470 and 900 <= len(at_50) <= 1100


def test_each_canary_version_draws_its_own_requests():
    v2 = {r for r in range(1, 1001) if serves_canary(r, "v2", 0.5)}
    v3 = {r for r in range(1, 1001) if serves_canary(r, "v3", 0.5)}
    assert 0.35 < len(v2 & v3) / len(v2) < 0.65  # independent halves overlap by about half


@pytest.mark.parametrize("canary, active", [((50, 100), (60, 100)), ((130, 300), (700, 1200)), ((90, 100), (60, 100))])
def test_the_p_value_is_the_pooled_z_tests_lower_tail(canary, active):
    (cu, cn), (au, an) = canary, active
    pooled = (cu + au) / (cn + an)
    z = (cu / cn - au / an) / (pooled * (1 - pooled) * (1 / cn + 1 / an)) ** 0.5
    assert p_value_canary_lower(ArmCounts(cu, cn), ArmCounts(au, an)) == pytest.approx(norm.cdf(z), rel=1e-9)


def test_no_ratings_or_no_spread_give_no_evidence():
    assert p_value_canary_lower(ArmCounts(0, 0), ArmCounts(5, 10)) == 1.0
    assert p_value_canary_lower(ArmCounts(10, 10), ArmCounts(20, 20)) == 1.0


def test_the_decision_waits_until_both_sides_have_the_minimum():
    worse = ArmCounts(10, 99)
    assert decide(worse, ArmCounts(90, 100), min_ratings=100, alpha=0.05).verdict == "wait"
    assert decide(ArmCounts(10, 100), ArmCounts(9, 99), min_ratings=100, alpha=0.05).verdict == "wait"


def test_a_significantly_worse_canary_is_ended():
    decision = decide(ArmCounts(45, 100), ArmCounts(65, 100), min_ratings=100, alpha=0.05)
    assert decision.verdict == "end" and decision.p_value < 0.05
    text = decision.describe("v2", "v1")
    assert "v2: 👍 45.0% (45 of 100 ratings)" in text and "v1: 👍 65.0% (65 of 100 ratings)" in text
    assert f"p = {decision.p_value:.4f}" in text


def test_a_slightly_worse_canary_that_is_not_significantly_worse_is_promoted():
    decision = decide(ArmCounts(57, 100), ArmCounts(60, 100), min_ratings=100, alpha=0.05)
    assert decision.verdict == "promote" and 0.05 < decision.p_value < 0.5


def test_a_better_canary_is_promoted():
    decision = decide(ArmCounts(80, 100), ArmCounts(60, 100), min_ratings=100, alpha=0.05)
    assert decision.verdict == "promote" and decision.p_value > 0.99
