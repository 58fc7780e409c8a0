"""The planning energy and the world model that evaluates it (spec: ac_planning.md §3, §6.1–§6.3).

``E(a_1:H) = mean |norm(P(a_1:H; s_k, z_k))_last − norm(z_goal)|``: the mean absolute difference between the
non-affine-LayerNormed last imagined frame and the goal frame's features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from jepa.data.rotations import compute_new_pose
from jepa.predictors.kv_cache import KVCache

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def feature_norm(x: torch.Tensor) -> torch.Tensor:
    """Non-affine LayerNorm over the feature axis (official ``normalize_reps``)."""
    return F.layer_norm(x, (x.shape[-1],))


def l1_energy(predicted: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over tokens and channels: ``(S, N, D)`` vs ``(1 | S, N, D)`` → ``(S,)``."""
    return (predicted - goal).abs().mean(dim=(-2, -1))


class WorldModel(nn.Module):
    """Frozen encoder + AC predictor with the planning rollouts.

    Args:
        encoder: video encoder called as ``encoder(video (B, 3, 2, H, W)) → (B, N, D)``.
        predictor: :class:`~jepa.predictors.action_conditioned.ACPredictor` (or anything with its call signature).
        use_cache: roll out with a KV cache (exact; cost per horizon step = one frame) instead of the official
            re-run over all frames so far.
        mean / std: pixel normalisation applied to uint8 images.
    """

    def __init__(
        self,
        encoder: nn.Module,
        predictor: nn.Module,
        use_cache: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.encoder, self.predictor, self.use_cache = encoder, predictor, use_cache
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Encode frames independently as duplicated 2-frame clips, then LayerNorm (spec §3).

        Args:
            images: ``(B, H, W, 3)`` uint8 frames, or ``(B, 3, H, W)`` float frames already normalised.

        Returns:
            ``(B, N, D)`` normalised features.
        """
        if images.dtype == torch.uint8:
            images = images.to(self.pixel_mean.device).permute(0, 3, 1, 2).float() / 255.0
            images = (images - self.pixel_mean) / self.pixel_std  # (B, 3, H, W)
        clip = images.unsqueeze(2).expand(-1, -1, 2, -1, -1)  # (B, 3, 2, H, W)
        return feature_norm(self.encoder(clip))

    def rollout(self, features: torch.Tensor, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Imagine ``H`` steps for every candidate action sequence and return the last imagined frame.

        Args:
            features: ``(1 | S, N, D)`` normalised features of the current frame.
            state: ``(1 | S, 7)`` current pose.
            actions: ``(S, H, 7)`` candidate action sequences.

        Returns:
            ``(S, N, D)`` normalised features of the frame after the last action.
        """
        samples, horizon = actions.shape[:2]
        frame = features.expand(samples, -1, -1)
        pose = state.expand(samples, -1)
        if self.use_cache:
            cache = KVCache()
            for h in range(horizon):  # only the new frame's tokens go through the predictor
                last = h == horizon - 1  # the last step's keys/values are never attended to: not stored
                out = self.predictor(frame, actions[:, h : h + 1], pose[:, None], cache=cache, update_cache=not last)
                frame = feature_norm(out)
                if not last:
                    pose = compute_new_pose(pose, actions[:, h])
            return frame
        frames, poses = [frame], [pose]
        tokens = frame.shape[1]
        for h in range(horizon):  # official: re-run over all frames so far, keep the last frame's tokens
            out = self.predictor(torch.cat(frames, dim=1), actions[:, : h + 1], torch.stack(poses, dim=1))
            frames.append(feature_norm(out[:, -tokens:]))
            if h < horizon - 1:  # the pose after the last action is never used
                poses.append(compute_new_pose(poses[-1], actions[:, h]))
        return frames[-1]

    def energy(
        self, features: torch.Tensor, state: torch.Tensor, goal: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``(S,)`` energies of ``actions (S, H, 7)`` from ``features (1, N, D)`` / ``state (1, 7)`` to ``goal``."""
        return l1_energy(self.rollout(features, state, actions), goal)
