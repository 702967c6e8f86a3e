"""How many ratings the canary test needs, and how often it ends a healthy canary: a simulation
of `service.canary_stats.decide` itself (one-sided two-proportion z-test at CANARY_ALPHA).

For a baseline 👍 share (60 %) and a canary 5 or 10 points worse, it finds the smallest number of
canary ratings at which the test ends the canary in 80 % of simulated rollouts, at canary
fractions of 50 % and 20 % (the active version then has (1 − f) / f times as many ratings). For a
healthy canary (the same share) it counts how often the test ends it anyway (the false alarm
rate), and it gives the power at the default CANARY_MIN_RATINGS.

Run: python benchmarks/canary_power.py [--trials 20000] [--alpha 0.05] [--min-ratings 300]
Writes benchmarks/results/canary_power.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from service.canary_stats import ArmCounts, decide
from service.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "canary_power.json"
BASELINE = 0.60
DROPS = (0.05, 0.10)
FRACTIONS = (0.5, 0.2)
TARGET_POWER = 0.80


def active_ratings(canary_ratings: int, fraction: float) -> int:
    """The active version's ratings while the canary collects `canary_ratings` (same rating rate)."""
    return max(1, round(canary_ratings * (1.0 - fraction) / fraction))


def end_rate(canary_share: float, canary_ratings: int, fraction: float, alpha: float, trials: int, seed: int) -> float:
    """Share of simulated rollouts the test ends, decided once the canary has `canary_ratings`."""
    rng = np.random.default_rng(seed)
    n_active = active_ratings(canary_ratings, fraction)
    ups_canary = rng.binomial(canary_ratings, canary_share, trials)
    ups_active = rng.binomial(n_active, BASELINE, trials)
    minimum = min(canary_ratings, n_active)
    ended = sum(
        decide(ArmCounts(int(c), canary_ratings), ArmCounts(int(a), n_active), min_ratings=minimum, alpha=alpha).verdict == "end"
        for c, a in zip(ups_canary, ups_active)
    )
    return ended / trials


def ratings_for_power(drop: float, fraction: float, alpha: float, trials: int) -> tuple[int, float]:
    """The smallest canary rating count (to 10) whose simulated power reaches TARGET_POWER."""
    share = BASELINE - drop
    coarse = next(n for n in range(50, 20_001, 50) if end_rate(share, n, fraction, alpha, trials, n) >= TARGET_POWER)
    for n in range(max(10, coarse - 40), coarse + 1, 10):
        power = end_rate(share, n, fraction, alpha, trials, n)
        if power >= TARGET_POWER:
            return n, power
    return coarse, end_rate(share, coarse, fraction, alpha, trials, coarse)


def main() -> None:
    defaults = Settings(_env_file=None)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20_000, help="simulated rollouts per point (default 20000)")
    parser.add_argument("--alpha", type=float, default=defaults.canary_alpha)
    parser.add_argument("--min-ratings", type=int, default=defaults.canary_min_ratings)
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    for fraction in FRACTIONS:
        for drop in DROPS:
            needed, power = ratings_for_power(drop, fraction, args.alpha, args.trials)
            rows.append({
                "fraction": fraction, "baseline_share": BASELINE, "drop": drop,
                "canary_ratings_for_80pct_power": needed, "active_ratings_then": active_ratings(needed, fraction),
                "power_there": round(power, 3),
                "power_at_min_ratings": round(end_rate(BASELINE - drop, args.min_ratings, fraction, args.alpha, args.trials, 7), 3),
                "false_alarm_at_that_count": round(end_rate(BASELINE, needed, fraction, args.alpha, args.trials, 11), 4),
                "false_alarm_at_min_ratings": round(end_rate(BASELINE, args.min_ratings, fraction, args.alpha, args.trials, 13), 4),
            })
    result = {
        "test": "one-sided two-proportion z-test (pooled); the canary is ended if p < alpha, else promoted",
        "alpha": args.alpha, "min_ratings": args.min_ratings, "trials": args.trials, "target_power": TARGET_POWER,
        "rows": rows, "seconds": round(time.monotonic() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"alpha {args.alpha}, baseline 👍 share {BASELINE:.0%}, {args.trials} simulated rollouts per point; "
          f"'at {args.min_ratings}' = deciding at CANARY_MIN_RATINGS")
    print(f"{'fraction':>8} {'drop':>5} {'ratings for 80%':>15} {'(active)':>9} {'power at ' + str(args.min_ratings):>13} "
          f"{'false alarm':>11} {'false alarm at ' + str(args.min_ratings):>19}")
    for row in rows:
        print(f"{row['fraction']:>8.0%} {row['drop'] * 100:>4.0f}pt {row['canary_ratings_for_80pct_power']:>15} "
              f"{row['active_ratings_then']:>9} {row['power_at_min_ratings']:>13.1%} "
              f"{row['false_alarm_at_that_count']:>11.2%} {row['false_alarm_at_min_ratings']:>19.2%}")
    print(f"written to {RESULTS} in {result['seconds']} s")


if __name__ == "__main__":
    main()
