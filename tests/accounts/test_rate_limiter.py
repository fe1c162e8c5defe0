"""Token buckets behind the 429 answers (time passed in, so nothing sleeps)."""

from __future__ import annotations

import pytest

from app.auth import RateLimiter, csrf_token_for


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    rl = RateLimiter(60)  # one a second
    assert all(rl.take("k", now=100.0) == 0 for _ in range(60))
    wait = rl.take("k", now=100.0)
    assert wait == pytest.approx(1.0)
    assert rl.take("other", now=100.0) == 0  # keys are independent
    assert rl.take("k", now=100.5) == pytest.approx(0.5)
    assert rl.take("k", now=101.0) == 0
    assert rl.take("k", now=101.0) > 0


def test_idle_buckets_are_forgotten_beyond_the_key_limit() -> None:
    rl = RateLimiter(10, max_keys=4)
    for i in range(5):
        rl.take(f"k{i}", now=float(i))
    assert len(rl._buckets) <= 4
    assert "k4" in rl._buckets


def test_csrf_tokens_are_bound_to_the_secret_and_the_browser() -> None:
    a = csrf_token_for("s" * 40, "session-a")
    assert a == csrf_token_for("s" * 40, "session-a")
    assert a != csrf_token_for("s" * 40, "session-b")
    assert a != csrf_token_for("t" * 40, "session-a")
