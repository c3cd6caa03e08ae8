"""Learning which recovery action fixes which failure signature (pure; no Kafka, no state).

Every plan is an *action key*: ``retry``, ``rollback``, ``escalate``, ``abort`` or
``fallback:<agent>@<model>``. For each signature the processor keeps, per action key, how many
of its plans have a known outcome (``tries``), after how many the step passed (``successes``),
the attempts those steps took in all and the cost of the attempts that passed.

The rule (:func:`choose`), given the plan the configured rules make (the *default*) and the other
actions that apply to the failure (the *candidates*, default first):

1. **Score** every candidate by its smoothed success rate ``(successes + 1) / (tries + 2)``
   (an action never tried scores 0.5). A candidate is *known* once it has ``learn_min_tries``
   outcomes.
2. **Explore** when the default is known and its observed success rate is below
   ``explore_below``, no known candidate reaches ``explore_below`` either, and some alternative is
   not known yet: try the first such alternative (in candidate order).
3. **Exploit** otherwise: the known candidate with the best score wins over the default if its
   score is higher (ties go to the default, then to candidate order).
4. **Re-check** every ``explore_every``-th plan of a signature (counted over all runs, so it is
   deterministic and needs no random seed): try the candidate with the fewest tries other than
   the one chosen, so a world that changed is noticed.

Escalation is never explored (asking a human is not an experiment): it is a candidate only when
the rules chose it, and then only learned actions can replace it.

Safety rules come before learning and are never overridden: a spent budget and the last allowed
attempt abort; policy violations and failed consensus go to a human; retries stay within
``max_retries``; a fallback is only used when one is configured and a rollback only when the run
has a checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omium.streams.recovery._planning import Plan, RecoverySettings


@dataclass(frozen=True)
class ActionStats:
    """The observed outcomes of one action for one failure signature.

    Attributes:
        action_key: The action (``retry``, ``fallback:careful-writer`` ...).
        tries: Plans with this action whose outcome is known.
        successes: Of those, plans after which the step passed.
        attempts: Attempts the step took in all, summed over the successes.
        cost_usd: LLM cost of the attempts that passed, summed over the successes.
    """

    action_key: str
    tries: int = 0
    successes: int = 0
    attempts: int = 0
    cost_usd: float = 0.0

    @property
    def score(self) -> float:
        """The smoothed success rate the planner compares: ``(successes + 1) / (tries + 2)``."""
        return (self.successes + 1) / (self.tries + 2)

    @property
    def success_rate(self) -> float | None:
        """``successes / tries``, or None before the first outcome."""
        return self.successes / self.tries if self.tries else None

    def with_outcome(
        self, *, success: bool, attempts: int = 0, cost_usd: float = 0.0
    ) -> ActionStats:
        """These statistics with one more outcome."""
        if not success:
            return replace(self, tries=self.tries + 1)
        return replace(
            self,
            tries=self.tries + 1,
            successes=self.successes + 1,
            attempts=self.attempts + attempts,
            cost_usd=round(self.cost_usd + cost_usd, 10),
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON form kept in the state table and put in ``RecoveryPlanned.statistics``."""
        return {
            "action_key": self.action_key,
            "tries": self.tries,
            "successes": self.successes,
            "attempts": self.attempts,
            "cost_usd": self.cost_usd,
            "score": round(self.score, 6),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ActionStats:
        """Statistics back from :meth:`to_record`'s form."""
        return cls(
            action_key=str(record["action_key"]),
            tries=int(record.get("tries", 0)),
            successes=int(record.get("successes", 0)),
            attempts=int(record.get("attempts", 0)),
            cost_usd=float(record.get("cost_usd", 0.0)),
        )


def action_key(
    action: str, *, fallback_agent: str | None = None, fallback_model: str | None = None
) -> str:
    """The key outcomes are learned under: the action, and for a fallback its agent and model."""
    if action != "fallback":
        return action
    return f"fallback:{fallback_agent or ''}" + (f"@{fallback_model}" if fallback_model else "")


def choose(
    default: Plan,
    candidates: Sequence[Plan],
    stats: Mapping[str, ActionStats],
    *,
    settings: RecoverySettings,
    plans_made: int,
) -> Plan:
    """Pick among the candidates by the rule in the module docstring.

    Args:
        default: The plan of the configured rules (also ``candidates[0]``).
        candidates: The plans that apply to the failure, default first.
        stats: Observed outcomes for the failure's signature, by action key.
        settings: ``learn_min_tries``, ``explore_below`` and ``explore_every``.
        plans_made: Plans made for the signature before this one (any run).

    Returns:
        The chosen plan, with ``decided_by``, ``default_key`` and the statistics used.
    """
    table = [stats.get(c.key) or ActionStats(c.key) for c in candidates]
    used = tuple(table)
    minimum = settings.learn_min_tries

    def pick(index: int, decided_by: str, reason: str) -> Plan:
        return replace(
            candidates[index],
            reason=reason,
            decided_by=decided_by,
            default_key=default.key,
            statistics=used,
        )

    ours = table[0]
    known = [i for i, s in enumerate(table) if s.tries >= minimum]
    best = max(known, key=lambda i: (table[i].score, i == 0, -i), default=None)
    untried = [i for i in range(1, len(table)) if table[i].tries < minimum]
    poor = ours.tries >= minimum and (ours.success_rate or 0.0) < settings.explore_below
    good_known = best is not None and (table[best].success_rate or 0.0) >= settings.explore_below

    if poor and untried and not good_known:
        chosen = untried[0]
        reason = (
            f"exploring: {ours.action_key} fixed {ours.successes} of {ours.tries} failures "
            f"like this; {table[chosen].action_key} has {table[chosen].tries} so far"
        )
        return pick(chosen, "explore", reason)
    index, decided_by = 0, "rule"
    if best is not None and best != 0 and table[best].score > ours.score:
        index, decided_by = best, "learned"
    every = settings.explore_every
    if every > 0 and len(table) > 1 and (plans_made + 1) % every == 0:
        # Asking a human is never an experiment.
        others = [i for i in range(len(table)) if i != index and table[i].action_key != "escalate"]
    else:
        others = []
    if others:
        chosen = min(others, key=lambda i: (table[i].tries, i))
        reason = (
            f"exploring (every {every}th plan of a signature): {table[chosen].action_key} has "
            f"{table[chosen].tries} tries; the best known is {table[index].action_key}"
        )
        return pick(chosen, "explore", reason)
    if decided_by == "learned":
        winner = table[index]
        reason = (
            f"learned: {winner.action_key} fixed {winner.successes} of {winner.tries} failures "
            f"like this (score {winner.score:.2f}), {ours.action_key} {ours.successes} of "
            f"{ours.tries} ({ours.score:.2f}); the rules said: {default.reason}"
        )
        return pick(index, "learned", reason)
    return pick(0, "rule", default.reason)
