"""The business plan's tool: the projection table from explicit assumptions, and optionally the check of a
text's numbers against it (the pack lists it in ``DomainPack.tools``)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from longthink.domains.business_plan.claims import check_numbers
from longthink.domains.business_plan.model import Assumptions, project
from longthink.tools.base import ToolResult


class FinancialModelArgs(BaseModel):
    """The tool's arguments: the assumptions, and optionally a text whose numbers are checked against the table."""

    assumptions: Assumptions
    text: str | None = Field(default=None, max_length=100_000)


@dataclass(frozen=True, slots=True)
class FinancialModel:
    """Build the projection table from explicit assumptions; with ``text``, also check its numbers.
    ``data`` is ``{"table": Projection.to_json(), "check": NumberCheck.to_json() | None}``."""

    name: str = "financial_model"
    description: str = (
        "build a revenue/costs/profit/margin projection table from explicit assumptions (baseline revenue or "
        "price x volume, growth rates, variable and fixed costs, levers, one-off investments) and check that "
        "the numbers in a text agree with it"
    )
    args_model: type[BaseModel] = FinancialModelArgs

    async def run(self, args: FinancialModelArgs) -> ToolResult:
        table = project(args.assumptions)
        output = table.markdown()
        check = None
        ok = True
        if args.text is not None:
            verdict = check_numbers(args.text, table)
            check = verdict.to_json()
            output += "\n\n" + verdict.summary()
            ok = verdict.consistent
        error = None if ok else "numbers in the text disagree with the table"
        return ToolResult(self.name, ok, output, error, {"table": table.to_json(), "check": check})
