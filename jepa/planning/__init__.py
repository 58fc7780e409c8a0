"""Planning with the V-JEPA 2-AC world model: energy, CEM, MPC, energy landscapes, test environments."""

from jepa.planning.cem import CEMConfig, CEMResult, cem
from jepa.planning.energy import WorldModel, feature_norm, l1_energy
from jepa.planning.envs import GymPlanningEnv, register_reacher
from jepa.planning.landscape import energy_landscape, write_png
from jepa.planning.mpc import Episode, run_mpc_episode, run_random_episode

__all__ = [
    "CEMConfig",
    "CEMResult",
    "Episode",
    "GymPlanningEnv",
    "WorldModel",
    "cem",
    "energy_landscape",
    "feature_norm",
    "l1_energy",
    "register_reacher",
    "run_mpc_episode",
    "run_random_episode",
    "write_png",
]
