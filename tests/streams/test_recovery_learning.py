"""The learning rule without Kafka: scores, exploration, exploitation, and what stays a rule."""

from __future__ import annotations

import pytest

from omium.streams.recovery import ActionStats, RecoverySettings, action_key, plan

SETTINGS = RecoverySettings(
    max_retries=3, backoff_ms=100, fallback_agent="careful-writer", explore_every=0
)
FALLBACK = "fallback:careful-writer"


def _stats(**counts: tuple[int, int]) -> dict[str, ActionStats]:
    keys = {"retry": "retry", "rollback": "rollback", "escalate": "escalate", "fallback": FALLBACK}
    return {
        keys[name]: ActionStats(keys[name], tries=tries, successes=successes)
        for name, (tries, successes) in counts.items()
    }


def test_action_keys_name_the_fallback() -> None:
    assert action_key("retry") == "retry"
    assert action_key("fallback", fallback_agent="b") == "fallback:b"
    assert action_key("fallback", fallback_model="big") == "fallback:@big"
    assert action_key("fallback", fallback_agent="b", fallback_model="big") == "fallback:b@big"


def test_scores_are_smoothed_success_rates() -> None:
    stats = ActionStats("retry")
    assert (stats.score, stats.success_rate) == (0.5, None)
    stats = stats.with_outcome(success=True, attempts=3, cost_usd=0.25)
    stats = stats.with_outcome(success=False)
    assert (stats.tries, stats.successes, stats.attempts, stats.cost_usd) == (2, 1, 3, 0.25)
    assert stats.score == pytest.approx(0.5) and stats.success_rate == 0.5
    assert ActionStats.from_record(stats.to_record()) == stats


def test_without_outcomes_the_rules_decide() -> None:
    chosen = plan(
        "exception", attempts=1, similar=0, settings=SETTINGS, checkpoint_id="cp", stats={}
    )

    assert (chosen.action, chosen.decided_by, chosen.default_key) == ("retry", "rule", "retry")
    assert [s.action_key for s in chosen.statistics] == ["retry", FALLBACK, "rollback"]
    assert all(s.tries == 0 for s in chosen.statistics)


def test_a_default_that_keeps_failing_makes_the_planner_try_what_it_does_not_know() -> None:
    chosen = plan(
        "exception",
        attempts=1,
        similar=2,
        settings=SETTINGS,
        checkpoint_id="cp",
        stats=_stats(retry=(2, 0)),
    )

    assert (chosen.action, chosen.fallback_agent, chosen.decided_by) == (
        "fallback",
        "careful-writer",
        "explore",
    )
    assert "retry fixed 0 of 2" in chosen.reason
    # Once the fallback is known too, a poor default is not explored past it again.
    chosen = plan(
        "exception",
        attempts=1,
        similar=4,
        settings=SETTINGS,
        checkpoint_id="cp",
        stats=_stats(retry=(2, 0), fallback=(2, 0)),
    )
    assert (chosen.action, chosen.decided_by) == ("rollback", "explore")


def test_the_best_known_action_wins_and_says_why() -> None:
    chosen = plan(
        "exception",
        attempts=1,
        similar=6,
        settings=SETTINGS,
        checkpoint_id="cp",
        stats=_stats(retry=(4, 0), fallback=(3, 3), rollback=(2, 1)),
    )

    assert (chosen.action, chosen.decided_by, chosen.default_key) == (
        "fallback",
        "learned",
        "escalate",
    )
    assert "careful-writer fixed 3 of 3" in chosen.reason
    scores = {s.action_key: s.score for s in chosen.statistics}
    assert scores == {"escalate": 0.5, "retry": 1 / 6, FALLBACK: 0.8, "rollback": 0.5}


def test_a_default_that_works_stays() -> None:
    chosen = plan(
        "exception",
        attempts=1,
        similar=3,
        settings=SETTINGS,
        checkpoint_id="cp",
        stats=_stats(retry=(3, 3), fallback=(2, 2)),
    )

    assert (chosen.action, chosen.decided_by) == ("retry", "rule")


def test_every_nth_plan_rechecks_the_least_tried_alternative() -> None:
    settings = RecoverySettings(fallback_agent="careful-writer", explore_every=5)
    stats = _stats(retry=(6, 0), fallback=(6, 6), rollback=(2, 1))

    ninth = plan(
        "exception", attempts=1, similar=8, settings=settings, checkpoint_id="cp", stats=stats
    )
    tenth = plan(
        "exception", attempts=1, similar=9, settings=settings, checkpoint_id="cp", stats=stats
    )

    assert (ninth.action, ninth.decided_by) == ("fallback", "learned")
    assert (tenth.action, tenth.decided_by) == ("rollback", "explore")


@pytest.mark.parametrize(
    ("kind", "attempts", "action"),
    [
        ("budget_exceeded", 1, "abort"),
        ("policy_violation", 1, "escalate"),
        ("exception", 8, "abort"),
    ],
)
def test_safety_rules_are_never_learned_away(kind: str, attempts: int, action: str) -> None:
    stats = _stats(fallback=(9, 9), retry=(9, 9))

    chosen = plan(
        kind, attempts=attempts, similar=0, settings=SETTINGS, checkpoint_id="cp", stats=stats
    )

    assert chosen.action == action and chosen.decided_by == "rule" and chosen.statistics == ()


def test_retries_stay_within_max_retries_however_well_they_did() -> None:
    chosen = plan(
        "exception",
        attempts=4,
        similar=0,
        settings=SETTINGS,
        checkpoint_id="cp",
        stats=_stats(retry=(9, 9), fallback=(9, 1)),
    )

    assert chosen.action != "retry" and chosen.default_key == FALLBACK
    assert [s.action_key for s in chosen.statistics] == [FALLBACK, "rollback"]


def test_errors_a_retry_cannot_fix_are_not_retried() -> None:
    chosen = plan(
        "exception", attempts=1, similar=0, settings=SETTINGS, checkpoint_id="cp", retryable=False
    )

    assert chosen.action == "fallback"


def test_learning_can_be_switched_off_per_workflow() -> None:
    settings = SETTINGS.overridden({"recovery.learn": "false"})

    chosen = plan(
        "exception",
        attempts=1,
        similar=5,
        settings=settings,
        checkpoint_id="cp",
        stats=_stats(fallback=(5, 5)),
    )

    assert (chosen.action, chosen.decided_by) == ("escalate", "rule")
