"""Per-problem allocation of a shared sample budget: spend more on hard problems.

Every problem first gets ``first`` samples (one batched call each, all problems concurrently). Difficulty is
read from that early agreement (1 - the leader's share of the votes); the rest of the budget is split in
proportion to difficulty, capped at ``cap`` samples per problem, so problems that already agree stop while
contested ones get more votes. Each problem then gets its extra samples in one batched call and is decided by
majority vote. (Snell et al. 2024 allocate by difficulty bins estimated the same way.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from longthink.errors import ConfigError
from longthink.search.base import leader, result, tally
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem, StepResult


def difficulty(candidates: Sequence[Candidate]) -> float:
    """1 - the leading answer's share of all candidates (1.0 when nothing parsed)."""
    votes = tally(candidates)
    if not votes or not candidates:
        return 1.0
    return 1.0 - max(votes.values()) / len(candidates)


def allocate(difficulties: Sequence[float], extra_total: int, cap_extra: int) -> list[int]:
    """Split ``extra_total`` samples in proportion to ``difficulties``, at most ``cap_extra`` each (largest
    remainders first; what a capped problem cannot take goes to the others)."""
    n = len(difficulties)
    out = [0] * n
    left = max(0, extra_total)
    open_ = [i for i in range(n) if difficulties[i] > 0 and cap_extra > 0]
    while left > 0 and open_:
        weight = sum(difficulties[i] for i in open_)
        shares = {i: left * difficulties[i] / weight for i in open_}
        given = 0
        for i in open_:
            take = min(cap_extra - out[i], int(shares[i]))
            out[i] += take
            given += take
        left -= given
        if given == 0:  # hand out the remainders one by one, most difficult first
            for i in sorted(open_, key=lambda i: (-(shares[i] % 1), -difficulties[i])):
                if left == 0:
                    break
                if out[i] < cap_extra:
                    out[i] += 1
                    left -= 1
        open_ = [i for i in open_ if out[i] < cap_extra]
    return out


async def solve_many(
    problems: Sequence[Problem], ctx: SearchContext, *, per_problem: int = 8, first: int = 4, cap: int = 16
) -> list[StepResult]:
    """Solve ``problems`` with ``per_problem`` samples each on average, allocated by early agreement."""
    if not 1 <= first <= per_problem <= cap:
        raise ConfigError(f"need 1 <= first <= per_problem <= cap, got {first}, {per_problem}, {cap}", field="first")
    before = [ctx.budget.spent.copy() for _ in problems]
    firsts = await asyncio.gather(*(ctx.sample(p, first, strategy="alloc0.") for p in problems))
    pools = [list(rows[0]) for rows in firsts]
    extra = allocate([difficulty(c) for c in pools], (per_problem - first) * len(problems), cap - first)
    more = await asyncio.gather(
        *(ctx.sample(p, k, strategy="alloc1.") for p, k in zip(problems, extra, strict=True) if k > 0)
    )
    rows = iter(more)
    results = []
    for p, pool, k, b in zip(problems, pools, extra, before, strict=True):
        if k > 0:
            pool += next(rows)[0]
        votes = tally(pool)
        answer = leader(votes, pool)
        chosen = next((c for c in pool if c.answer == answer), None) if answer else None
        reason = f"vote of {len(pool)} samples ({first} + {k} allocated by early disagreement)"
        results.append(result(ctx, p, "allocated", pool, chosen, reason, b, votes=votes))
    return results
