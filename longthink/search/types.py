"""The nouns of search (defined in :mod:`longthink.trace`, re-exported here where strategies import them)."""

from longthink.trace import Candidate, Parser, Problem, Reading, Score, StepResult, prompt_hash

__all__ = ["Candidate", "Parser", "Problem", "Reading", "Score", "StepResult", "prompt_hash"]
