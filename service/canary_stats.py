"""A canary's arithmetic, with nothing but `math` and `hashlib`: which request it serves, and
whether its 👍 share is significantly lower than the active version's.

Plain values in, plain values out, so the bot (which must stay free of TensorFlow), the workers
and `benchmarks/canary_power.py` all use these very functions.

Assignment is by request id: each photo is an independent draw, which is what the test assumes
(by user id, a few prolific raters would weigh on one side and the false alarm rate would exceed
α). The same request always lands on the same side, so a retried job keeps its version, and a
larger fraction only adds requests to the canary, never moves any away from it.

The test is one-sided: a canary is ended only when its 👍 share is significantly LOWER than the
active version's at level α (two-proportion z-test, pooled variance); otherwise it is promoted
once both versions have enough ratings. So a healthy canary is ended with probability about α,
and a worse one slips through with probability 1 − power (benchmarks/canary_power.py).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["wait", "promote", "end"]
HASH_SPACE = float(2**64)


def serves_canary(request_id: int, canary_version: str, fraction: float) -> bool:
    """Whether this request belongs to the canary's share: a stable hash of version and request."""
    digest = hashlib.sha256(f"{canary_version}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / HASH_SPACE < fraction


@dataclass(frozen=True)
class ArmCounts:
    """👍 and all ratings (👍 + 👎) on one version's captions since the canary started."""

    up: int
    total: int

    @property
    def share(self) -> float | None:
        return self.up / self.total if self.total else None


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def p_value_canary_lower(canary: ArmCounts, active: ArmCounts) -> float:
    """One-sided p-value of H0 "the canary's 👍 share is not lower" against H1 "it is lower".

    Pooled two-proportion z-test; 1.0 where the test has nothing to go on (an empty side, or
    every rating the same on both sides, where no difference can be seen).
    """
    if canary.total == 0 or active.total == 0:
        return 1.0
    pooled = (canary.up + active.up) / (canary.total + active.total)
    variance = pooled * (1.0 - pooled) * (1.0 / canary.total + 1.0 / active.total)
    if variance <= 0.0:
        return 1.0
    z = (canary.up / canary.total - active.up / active.total) / math.sqrt(variance)
    return _normal_cdf(z)


@dataclass(frozen=True)
class CanaryDecision:
    verdict: Verdict
    canary: ArmCounts
    active: ArmCounts
    p_value: float
    alpha: float
    min_ratings: int

    def describe(self, canary_version: str, active_version: str) -> str:
        """The numbers an admin is told: shares, counts, p-value and the rule that decided."""
        def side(version: str, counts: ArmCounts) -> str:
            share = "–" if counts.share is None else f"{counts.share:.1%}"
            return f"{version}: 👍 {share} ({counts.up} of {counts.total} ratings)"

        rule = {
            "end": f"its 👍 share is significantly lower (one-sided p = {self.p_value:.4f} < α = {self.alpha})",
            "promote": f"its 👍 share is not significantly lower (one-sided p = {self.p_value:.4f} ≥ α = {self.alpha})",
            "wait": f"waiting for {self.min_ratings} ratings on each side (one-sided p so far = {self.p_value:.4f})",
        }[self.verdict]
        return f"{side(canary_version, self.canary)}\n{side(active_version, self.active)}\n{rule}"


def decide(canary: ArmCounts, active: ArmCounts, *, min_ratings: int, alpha: float) -> CanaryDecision:
    """End the canary when it is significantly worse at α; promote it once both sides have
    `min_ratings` ratings and it is not; wait until then.

    Deciding "end" before min_ratings would look at the data many times and raise the false alarm
    rate above α, so both verdicts wait for the same count.
    """
    p_value = p_value_canary_lower(canary, active)
    if canary.total < min_ratings or active.total < min_ratings:
        verdict: Verdict = "wait"
    elif p_value < alpha:
        verdict = "end"
    else:
        verdict = "promote"
    return CanaryDecision(verdict, canary, active, p_value, alpha, min_ratings)
