"""Environments used to test planning: a numpy-rendered point reacher (gymnasium is not a dependency)."""

from jepa.planning.envs.reacher import PointReacher, random_trajectory

__all__ = ["PointReacher", "random_trajectory"]
