"""Planners: decomposition into a typed plan, plan scoring and selection, replanning."""
