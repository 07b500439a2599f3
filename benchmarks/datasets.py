"""Benchmark datasets: GSM8K (test split) and Game of 24, with the Game-of-24 rule checker.

- GSM8K is read from ``../shared/data/gsm8k/test.jsonl`` (relative to the repository root); the reference
  answer is what follows ``#### `` in the solution. A fixed, seeded subset is taken from a seeded permutation,
  so a larger subset contains every smaller one.
- Game of 24 comes from the ``tree-of-thoughts-llm`` package (``pip install --no-deps tree-of-thoughts-llm``):
  the file ``tot/data/24/24.csv`` is located through importlib *without importing the package*. Like the
  Tree-of-Thoughts paper we report on ranks 900-999 (the hard end of the list); the prompt's worked examples
  come from ranks below 900.
- :func:`check_24` verifies a Game-of-24 answer by evaluating it safely: the expression is parsed with
  :mod:`ast` and only numbers, ``+ - * /`` and parentheses are accepted; each of the four numbers must be
  used exactly once, and the result must equal 24 within 1e-6. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import importlib.util
import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from longthink.errors import ConfigError
from longthink.llm.types import Message
from longthink.program import AnswerMode, program_question
from longthink.search.types import Problem

REPO = Path(__file__).resolve().parents[1]
GSM8K_PATH = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"

GSM8K_INSTRUCTION = "Solve the problem step by step. End with the final answer on its own line as 'Answer: <number>'."

# Game of 24: the format of the Tree-of-Thoughts chain-of-thought prompt (one operation per line, the numbers
# left in brackets, then the whole expression). The worked examples are puzzles of ranks below 900.
GAME24_INSTRUCTION = (
    "Use the four numbers and basic arithmetic operations (+ - * /) to obtain 24. Each number must be used "
    "exactly once. In each step, combine two of the remaining numbers into a new number. Finish with one line "
    "'Answer: <expression> = 24' that uses all four numbers."
)
GAME24_SHOTS_SOLVED: tuple[tuple[tuple[int, ...], str], ...] = (
    (
        (2, 8, 9, 9),  # rank 120
        "9 + 9 = 18 (left: 2 8 18)\n8 - 2 = 6 (left: 6 18)\n18 + 6 = 24 (left: 24)\nAnswer: (9 + 9) + (8 - 2) = 24\n",
    ),
    (
        (4, 5, 5, 8),  # rank 482
        "5 / 5 = 1 (left: 1 4 8)\n4 - 1 = 3 (left: 3 8)\n3 * 8 = 24 (left: 24)\nAnswer: (4 - 5 / 5) * 8 = 24\n",
    ),
    (
        (3, 4, 6, 10),  # rank 833
        "3 * 6 = 18 (left: 4 10 18)\n10 - 4 = 6 (left: 6 18)\n18 + 6 = 24 (left: 24)\nAnswer: 3 * 6 + (10 - 4) = 24\n",
    ),
)


def problem_seed(base: int, problem_id: str) -> int:
    """A stable per-problem seed (the generation cache is keyed by it)."""
    return int(hashlib.sha256(f"{base}:{problem_id}".encode()).hexdigest()[:8], 16)


# -- GSM8K --------------------------------------------------------------------------------------------------
def gsm8k_reference(solution: str) -> str:
    """The reference answer of a GSM8K solution: the text after ``#### `` (commas dropped)."""
    if "####" not in solution:
        raise ConfigError("GSM8K solution without a '#### answer' line", field="answer")
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


def load_gsm8k(
    n: int,
    *,
    seed: int = 0,
    path: Path = GSM8K_PATH,
    max_tokens: int = 320,
    offset: int = 0,
    mode: AnswerMode = "text",
) -> list[Problem]:
    """``n`` GSM8K test problems, a fixed seeded subset (items ``offset..offset+n`` of a seeded permutation).

    ``mode="program"``: the question with the program-mode instruction (the model writes Python that prints the
    answer); the problem ids get a ``-program`` suffix so their seeds differ from the text problems'."""
    if not path.is_file():
        raise ConfigError(f"GSM8K test file not found at {path}", field="dataset")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    problems = []
    for idx in order[offset : offset + n]:
        row = rows[idx]
        question = row["question"].strip()
        problems.append(
            Problem.from_text(
                f"gsm8k-{idx}" + ("-program" if mode == "program" else ""),
                question if mode == "program" else f"{question}\n\n{GSM8K_INSTRUCTION}",
                answer_kind="number",
                mode=mode,
                max_tokens=max_tokens,
                reference=gsm8k_reference(row["answer"]),
                metadata={"dataset": "gsm8k", "index": idx},
            )
        )
    return problems


# -- Game of 24 ---------------------------------------------------------------------------------------------
def game24_csv() -> Path:
    """Where the ``tree-of-thoughts-llm`` package keeps ``24.csv`` (found without importing the package)."""
    spec = importlib.util.find_spec("tot")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "data" / "24" / "24.csv"
        if path.is_file():
            return path
    raise ConfigError(
        "Game of 24 data not found: pip install --no-deps tree-of-thoughts-llm (it ships tot/data/24/24.csv)",
        field="dataset",
    )


@dataclass(frozen=True, slots=True)
class Puzzle:
    rank: int
    numbers: tuple[int, ...]


def load_24_puzzles(path: Path | None = None) -> list[Puzzle]:
    """Every puzzle of the CSV, by rank (1 = solved fastest by people)."""
    with (path or game24_csv()).open(newline="") as f:
        return [Puzzle(int(row["Rank"]), tuple(int(x) for x in row["Puzzles"].split())) for row in csv.DictReader(f)]


def game24_prompt(numbers: Sequence[int]) -> tuple[Message, ...]:
    """The instruction as the system message, the worked examples as chat turns, then the puzzle.

    Tuned on ranks below 900 only: with the examples as turns Qwen2.5-0.5B writes the steps (8 samples of 10
    tuning puzzles: 6 of 80 valid), while one user message holding the examples made it skip to a (wrong)
    answer line (0 of 80).
    """
    messages = [Message.system(GAME24_INSTRUCTION)]
    for nums, steps in GAME24_SHOTS_SOLVED:
        messages += [Message.user(f"Input: {' '.join(map(str, nums))}"), Message.assistant(f"Steps:\n{steps}")]
    messages.append(Message.user(f"Input: {' '.join(map(str, numbers))}"))
    return tuple(messages)


def game24_program_prompt(numbers: Sequence[int]) -> tuple[Message, ...]:
    """Program mode: the puzzle, and the program-mode instruction asking for the expression to be printed."""
    question = (
        f"Use the numbers {' '.join(map(str, numbers))} and basic arithmetic operations (+ - * /) to obtain 24. "
        "Each number must be used exactly once. The program should try the ways of combining the numbers and "
        "print one expression, as a string such as '(4 + 8) * (6 - 4)', that equals 24."
    )
    return (Message.user(program_question(question, "expression")),)


def load_game24(
    ranks: range = range(900, 1000), *, max_tokens: int = 128, path: Path | None = None, mode: AnswerMode = "text"
) -> list[Problem]:
    """The puzzles of ``ranks`` (default 900-999, as reported by the Tree-of-Thoughts paper) as problems; in
    program mode the model writes a program that prints the expression (ids get a ``-program`` suffix)."""
    puzzles = [p for p in load_24_puzzles(path) if p.rank in ranks]
    program = mode == "program"
    return [
        Problem(
            f"game24-{p.rank}" + ("-program" if program else ""),
            game24_program_prompt(p.numbers) if program else game24_prompt(p.numbers),
            answer_kind="expression",
            mode=mode,
            max_tokens=max_tokens,
            reference=" ".join(map(str, p.numbers)),
            metadata={"dataset": "game24", "rank": p.rank, "numbers": list(p.numbers)},
        )
        for p in puzzles
    ]


# -- the Game-of-24 checker ---------------------------------------------------------------------------------
_OPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_MAX_EXPR = 200


class _Rejected(ValueError):
    pass


def _evaluate(node: ast.AST, used: list[int]) -> Fraction:
    """Exact value of an arithmetic tree; collects the integer literals into ``used``; rejects anything else."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, used)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left = _evaluate(node.left, used)
        right = _evaluate(node.right, used)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise _Rejected("division by zero")
        return left / right
    what = type(node.op).__name__ if isinstance(node, ast.BinOp) else type(node).__name__
    raise _Rejected(f"not allowed: {what}")


def check_24(expression: str | None, numbers: Sequence[int]) -> tuple[bool, str]:
    """Whether ``expression`` solves the puzzle ``numbers``, and why not.

    Accepts only integer literals, ``+ - * /`` and parentheses (``×``/``÷`` are read as ``*``/``/``, and a
    trailing ``= 24`` is ignored); each number of the puzzle must be used exactly once; the value must be 24
    within 1e-6 (computed exactly with fractions). Never evaluates code.
    """
    if expression is None:
        return False, "no expression"
    text = expression.replace("×", "*").replace("÷", "/").strip()
    if "=" in text:
        text = text.split("=", 1)[0]
    if not text or len(text) > _MAX_EXPR:
        return False, "empty or too long"
    if any(ch not in "0123456789+-*/() \t" for ch in text):
        return False, "characters other than digits, + - * / and parentheses"
    try:
        tree = ast.parse(text, mode="eval")
        used: list[int] = []
        value = _evaluate(tree, used)
    except (SyntaxError, _Rejected, RecursionError, ValueError) as exc:
        return False, f"rejected: {exc}"
    if sorted(used) != sorted(numbers):
        return False, f"uses {sorted(used)}, the puzzle is {sorted(numbers)}"
    if abs(float(value) - 24) > 1e-6:
        return False, f"evaluates to {float(value):g}, not 24"
    return True, "valid"


def solve_24(numbers: Sequence[int]) -> str | None:
    """One solution of the puzzle by exhaustive search (None if there is none); for examples and tests."""

    def search(items: list[tuple[Fraction, str]]) -> str | None:
        if len(items) == 1:
            return items[0][1] if items[0][0] == 24 else None
        for i, j in itertools.permutations(range(len(items)), 2):
            (a, ea), (b, eb) = items[i], items[j]
            rest = [items[k] for k in range(len(items)) if k not in (i, j)]
            options = [(a + b, f"({ea} + {eb})"), (a - b, f"({ea} - {eb})"), (a * b, f"({ea} * {eb})")]
            if b != 0:
                options.append((a / b, f"({ea} / {eb})"))
            for value, expr in options:
                found = search([*rest, (value, expr)])
                if found:
                    return found
        return None

    found = search([(Fraction(n), str(n)) for n in numbers])
    return found[1:-1] if found and found.startswith("(") and found.endswith(")") else found
