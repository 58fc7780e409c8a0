"""Frame-level image-encoder baselines: any image encoder applied to each frame of a clip, as a video encoder.

The paper compares V-JEPA 2 with image encoders (DINOv2, SigLIP2, PE) under the same attentive-probe protocol
(spec probes.md §8) by running the image encoder on frames and concatenating the frame tokens. :class:`FrameEncoder`
does that for any ``nn.Module`` ``images (B', 3, H, W) → tokens (B', N, D)`` (or pooled ``(B', D)``), so the probes
consume its tokens unchanged. Frames are encoded independently: a frame-level encoder cannot see motion, and an
attentive probe (no positions) over its tokens cannot see the order of frames either.

Registered builders (``jepa.create_encoder`` / a probe YAML's ``encoder:``):

* ``timm_frames``: a timm image model (the optional ``timm`` extra, imported only when the builder runs); override
  ``model_name``.
* ``jepa_frames``: a jepa encoder (registry name or checkpoint source) in image mode; override ``base``.

Their weights are chosen by overrides (``timm_pretrained``; ``base`` + ``base_pretrained``): ``create_encoder``'s
own ``pretrained`` (a probe's task-level ``pretrained``) must stay ``False`` for them, as it loads a jepa checkpoint
into the built module, which a wrapper cannot take (``create_encoder`` says the name has no default weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from jepa.registry import ENCODERS

# How jepa clips arrive (jepa.data.transforms normalises with these); kept here so encoders never import data.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TIMM_INSTALL_HINT = "pip install 'jepa-lightning[timm]'"

TimmTokens = Literal["patch", "all", "pooled"]


@dataclass(frozen=True)
class FrameEncoderConfig:
    """The numbers tasks read from ``encoder.config`` of a frame-level encoder.

    Attributes:
        embed_dim: token width D.
        frame_stride: one frame in ``frame_stride`` is encoded.
        image_size: ``(H, W)`` frames are resized to, or ``None`` (as given).
    """

    embed_dim: int
    frame_stride: int = 1
    image_size: tuple[int, int] | None = None

    @property
    def tubelet_size(self) -> int:
        """Input frames per temporal token slot (``frame_stride``): what ``ProbeTask`` repeats an image to, and
        what ``frozen_probe`` divides ``frames_per_clip`` by to count time slots."""
        return self.frame_stride


def _pair(size: int | Sequence[int] | None, what: str) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    values = tuple(int(s) for s in size)
    if len(values) != 2:
        raise ValueError(f"FrameEncoder: {what} must be an int or (H, W), got {size!r}")
    return values  # type: ignore[return-value]


def _channel_stats(values: Sequence[float] | None, what: str) -> torch.Tensor | None:
    if values is None:
        return None
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float32)
    if tensor.ndim != 1 or tensor.numel() not in (1, 3):
        raise ValueError(f"FrameEncoder: {what} must have 1 or 3 values (per channel), got {values!r}")
    return tensor.expand(3).clone().view(1, 3, 1, 1)  # (1, 3, 1, 1)


class FrameEncoder(nn.Module):
    """Apply an image encoder to every (``frame_stride``-th) frame of a clip; tokens of all frames are concatenated.

    Args:
        image_encoder: ``images (B', 3, H, W) → tokens (B', N, D)``, pooled ``(B', D)`` (treated as ``N = 1``) or a
            feature map ``(B', D, h, w)`` / ``(B', h, w, D)`` (``N = h·w``).
        embed_dim: D; default ``image_encoder.embed_dim`` (or ``.num_features``).
        frame_stride: encode frames ``0, s, 2s, …`` of each clip (the paper's image baselines use one frame per
            2-frame tubelet: ``frame_stride=2``).
        image_size: resize frames to this ``H`` / ``(H, W)`` before encoding (``None``: keep the clip's size).
        interpolation: ``F.interpolate`` mode of the resize (``"bilinear"`` or ``"bicubic"``, antialiased).
        mean, std: per-channel normalisation the image encoder expects; with both given, clips are re-normalised
            from ``input_mean`` / ``input_std``. ``None``: pixels are passed as they come.
        input_mean, input_std: normalisation of the incoming clips (jepa data: ImageNet).
        features: method giving the tokens: ``"forward"`` (call the module) or ``"forward_features"`` (timm).
        num_prefix_tokens: leading non-patch tokens (CLS, registers) in each frame's ``features`` output.
        keep_prefix_tokens: keep them (default: drop them, patch tokens only).
        max_images_per_call: encode at most this many frames per call of the image encoder (memory); ``None``: all.

    Call ``encoder(video, out_layers=None)``:

    * ``video``: ``(B, 3, T, H, W)`` clip, or an image ``(B, 3, H, W)`` (one frame).
    * returns ``(B, T'·N, D)`` with ``T' = ceil(T / frame_stride)``, frame-major (all tokens of frame 0, then
      frame 1, …); with ``out_layers=[i, …]`` a list of such tensors, one per block, from the image encoder's
      timm-style ``forward_intermediates(images, indices, norm=True, output_fmt="NLC", intermediates_only=True)``.
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        embed_dim: int | None = None,
        *,
        frame_stride: int = 1,
        image_size: int | Sequence[int] | None = None,
        interpolation: str = "bilinear",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        input_mean: Sequence[float] = IMAGENET_MEAN,
        input_std: Sequence[float] = IMAGENET_STD,
        features: Literal["forward", "forward_features"] = "forward",
        num_prefix_tokens: int = 0,
        keep_prefix_tokens: bool = False,
        max_images_per_call: int | None = None,
    ) -> None:
        super().__init__()
        if embed_dim is None:
            embed_dim = getattr(image_encoder, "embed_dim", None) or getattr(image_encoder, "num_features", None)
        if not isinstance(embed_dim, int) or embed_dim <= 0:
            raise ValueError(
                f"FrameEncoder: cannot tell the token width of {type(image_encoder).__name__} (no int `embed_dim` "
                f"or `num_features`, got {embed_dim!r}); pass embed_dim="
            )
        if frame_stride < 1:
            raise ValueError(f"FrameEncoder: frame_stride must be >= 1, got {frame_stride}")
        if features not in ("forward", "forward_features"):
            raise ValueError(f"FrameEncoder: features must be 'forward' or 'forward_features', got {features!r}")
        if num_prefix_tokens < 0:
            raise ValueError(f"FrameEncoder: num_prefix_tokens must be >= 0, got {num_prefix_tokens}")
        if max_images_per_call is not None and max_images_per_call < 1:
            raise ValueError(f"FrameEncoder: max_images_per_call must be >= 1 or None, got {max_images_per_call}")
        if (mean is None) != (std is None):
            raise ValueError("FrameEncoder: give both `mean` and `std` (re-normalisation) or neither")
        self.image_encoder = image_encoder
        self.embed_dim = self.num_features = embed_dim
        self.frame_stride = frame_stride
        self.image_size = _pair(image_size, "image_size")
        self.interpolation = interpolation
        self.features = features
        self.num_prefix_tokens = num_prefix_tokens
        self.keep_prefix_tokens = keep_prefix_tokens
        self.max_images_per_call = max_images_per_call
        self.config = FrameEncoderConfig(embed_dim, frame_stride, self.image_size)
        # x_new = (x·s_in + m_in − m) / s = x·scale + shift, per channel; non-persistent: not part of checkpoints.
        target_mean, target_std = _channel_stats(mean, "mean"), _channel_stats(std, "std")
        if target_mean is not None and target_std is not None:
            source_mean, source_std = _channel_stats(input_mean, "input_mean"), _channel_stats(input_std, "input_std")
            assert source_mean is not None and source_std is not None
            self.register_buffer("norm_scale", source_std / target_std, persistent=False)  # (1, 3, 1, 1)
            self.register_buffer("norm_shift", (source_mean - target_mean) / target_std, persistent=False)
        else:
            self.norm_scale = self.norm_shift = None

    # ------------------------------------------------------------------ helpers
    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """Resize and re-normalise frames ``(B', 3, H, W)`` for the image encoder; returns ``(B', 3, H'', W'')``."""
        if self.image_size is not None and tuple(images.shape[-2:]) != self.image_size:
            antialias = self.interpolation in ("bilinear", "bicubic")
            images = F.interpolate(
                images, size=self.image_size, mode=self.interpolation, align_corners=False, antialias=antialias
            )
        if self.norm_scale is not None:
            images = images * self.norm_scale.to(images.dtype) + self.norm_shift.to(images.dtype)
        return images

    def _frames(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` or ``(B, 3, H, W)`` → selected frames ``(B, 3, T', H, W)``."""
        if not isinstance(video, torch.Tensor) or not video.is_floating_point():
            raise TypeError(f"FrameEncoder: expected a float tensor (normalised pixels), got {type(video).__name__}")
        if video.ndim not in (4, 5) or video.shape[1] != 3:
            raise ValueError(
                f"FrameEncoder: expected a clip (B, 3, T, H, W) or an image (B, 3, H, W), got {tuple(video.shape)}"
            )
        if video.ndim == 4:
            video = video.unsqueeze(2)  # (B, 3, 1, H, W): an image is one frame
        return video[:, :, :: self.frame_stride]  # (B, 3, T', H, W)

    def _as_tokens(self, output: Any, what: str) -> torch.Tensor:
        """One frame batch's output → ``(B', N, D)``."""
        if not torch.is_tensor(output):
            raise TypeError(f"FrameEncoder: {what} of {type(self.image_encoder).__name__} returned {type(output)}")
        if output.ndim == 2:
            output = output.unsqueeze(1)  # (B', 1, D): a pooled embedding is one token
        elif output.ndim == 4:  # a feature map (convnets): every position is a token
            if output.shape[1] == self.embed_dim:
                output = output.flatten(2).transpose(1, 2)  # (B', D, h, w) → (B', h·w, D)
            elif output.shape[-1] == self.embed_dim:
                output = output.flatten(1, 2)  # (B', h, w, D) → (B', h·w, D)
        if output.ndim != 3 or output.shape[-1] != self.embed_dim:
            raise ValueError(
                f"FrameEncoder: {what} of {type(self.image_encoder).__name__} returned shape {tuple(output.shape)}; "
                f"expected tokens (B', N, D={self.embed_dim}), pooled (B', D) or a feature map (B', D, h, w)"
            )
        return output

    def _encode_images(self, images: torch.Tensor, out_layers: list[int] | None) -> list[torch.Tensor]:
        """Frames ``(B', 3, H, W)`` → one ``(B', N, D)`` per level (the last block when ``out_layers`` is None)."""
        model = self.image_encoder
        if out_layers is not None:
            if not hasattr(model, "forward_intermediates"):
                raise ValueError(
                    f"FrameEncoder: out_layers={out_layers} needs `forward_intermediates` (timm API) on the image "
                    f"encoder; {type(model).__name__} has none"
                )
            kwargs: dict[str, Any] = {"indices": out_layers, "norm": True, "output_fmt": "NLC"}
            if self.num_prefix_tokens and self.keep_prefix_tokens:
                kwargs["return_prefix_tokens"] = True
            levels = model.forward_intermediates(images, intermediates_only=True, **kwargs)
            if len(levels) != len(out_layers):
                raise ValueError(
                    f"FrameEncoder: forward_intermediates gave {len(levels)} outputs for out_layers={out_layers}"
                )
            if kwargs.get("return_prefix_tokens"):  # timm gives (patch tokens, prefix tokens) per level
                levels = [torch.cat([prefix, spatial], dim=1) for spatial, prefix in levels]  # (B', P+N, D)
            return [self._as_tokens(level, "forward_intermediates") for level in levels]
        output = model.forward_features(images) if self.features == "forward_features" else model(images)
        tokens = self._as_tokens(output, self.features)
        if self.num_prefix_tokens and not self.keep_prefix_tokens:
            if tokens.shape[1] <= self.num_prefix_tokens:
                raise ValueError(
                    f"FrameEncoder: {tokens.shape[1]} tokens per frame leave no patch token after dropping "
                    f"num_prefix_tokens={self.num_prefix_tokens}"
                )
            tokens = tokens[:, self.num_prefix_tokens :]  # (B', N, D) patch tokens
        return [tokens]

    # ------------------------------------------------------------------ forward
    def forward(
        self, video: torch.Tensor, out_layers: Sequence[int] | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Encode a clip frame by frame; see the class docstring. Returns ``(B, T'·N, D)`` or a list of them."""
        frames = self._frames(video)
        batch, _, num_frames = frames.shape[:3]
        images = frames.transpose(1, 2).flatten(0, 1)  # (B·T', 3, H, W), frames of one clip consecutive
        images = self.prepare_images(images)
        layers = [int(i) for i in out_layers] if out_layers is not None else None
        step = self.max_images_per_call or images.shape[0]
        chunks = [self._encode_images(chunk, layers) for chunk in images.split(step)]
        levels = [torch.cat(parts, dim=0) for parts in zip(*chunks, strict=True)]  # L × (B·T', N, D)
        outputs = [x.unflatten(0, (batch, num_frames)).flatten(1, 2) for x in levels]  # L × (B, T'·N, D)
        return outputs if out_layers is not None else outputs[0]

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, frame_stride={self.frame_stride}, image_size={self.image_size}, "
            f"features={self.features!r}, num_prefix_tokens={self.num_prefix_tokens}, "
            f"keep_prefix_tokens={self.keep_prefix_tokens}, renormalise={self.norm_scale is not None}"
        )


# ---------------------------------------------------------------------------------------------- builders
def timm_frame_encoder(
    model_name: str,
    pretrained: bool = True,
    *,
    frame_stride: int = 1,
    tokens: TimmTokens = "patch",
    image_size: int | Sequence[int] | None = None,
    resize: bool = True,
    normalize: bool = True,
    interpolation: str = "bicubic",
    max_images_per_call: int | None = None,
    **timm_kwargs: Any,
) -> FrameEncoder:
    """A timm image model as a frame-level video encoder (needs the ``timm`` extra; imported here, lazily).

    Args:
        model_name: any ``timm.create_model`` name, e.g. ``vit_base_patch16_224.augreg_in21k``.
        pretrained: load timm's pretrained weights (downloaded by timm from the Hugging Face Hub).
        frame_stride: encode one frame in ``frame_stride`` (see :class:`FrameEncoder`).
        tokens: ``"patch"`` (``forward_features`` without CLS / register tokens, via ``model.num_prefix_tokens``),
            ``"all"`` (with them) or ``"pooled"`` (the model's pooled embedding ``(B', D)``, one token per frame).
        image_size: resize frames to this size; ``None``: the model's ``pretrained_cfg["input_size"]``.
        resize: ``False`` feeds frames at the clip's size (for models built with ``dynamic_img_size=True``).
        normalize: re-normalise ImageNet-normalised clips to the model's ``pretrained_cfg`` mean / std.
        interpolation: resize mode (``"bicubic"``: timm's usual eval interpolation).
        max_images_per_call: frames per model call (memory bound); ``None``: all at once.
        timm_kwargs: more ``timm.create_model`` arguments (``dynamic_img_size``, ``img_size`` …).

    Returns:
        A :class:`FrameEncoder` around ``timm.create_model(model_name, pretrained=pretrained, num_classes=0, ...)``.

    Raises:
        ImportError: timm is not installed (with the install command).
    """
    if tokens not in ("patch", "all", "pooled"):
        raise ValueError(f"timm_frame_encoder: tokens must be 'patch', 'all' or 'pooled', got {tokens!r}")
    try:
        import timm
    except ImportError as error:  # also raised when sys.modules["timm"] is None
        raise ImportError(
            f"timm_frame_encoder({model_name!r}) needs the optional timm package: {TIMM_INSTALL_HINT} "
            f"(import failed: {error})"
        ) from error
    model = timm.create_model(model_name, pretrained=pretrained, num_classes=0, **timm_kwargs)
    cfg = dict(getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {})
    size: int | Sequence[int] | None = None
    if resize:
        size = image_size if image_size is not None else tuple(cfg.get("input_size") or ())[1:]
        if not size:
            raise ValueError(
                f"timm_frame_encoder({model_name!r}): the model has no pretrained_cfg['input_size'] (C, H, W); "
                "pass image_size= or resize=False"
            )
    mean = cfg.get("mean") if normalize else None
    std = cfg.get("std") if normalize else None
    if normalize and (mean is None or std is None):
        raise ValueError(
            f"timm_frame_encoder({model_name!r}): the model has no pretrained_cfg mean/std; pass normalize=False "
            "to feed ImageNet-normalised pixels as they are"
        )
    pooled = tokens == "pooled"
    prefix = 0 if pooled else int(getattr(model, "num_prefix_tokens", 0))
    # Width of forward_features tokens: num_features; of the pooled output: head_hidden_size where it differs.
    dim = (getattr(model, "head_hidden_size", None) if pooled else None) or getattr(model, "num_features", None)
    return FrameEncoder(
        model,
        int(dim) if dim else None,
        frame_stride=frame_stride,
        image_size=size,
        interpolation=interpolation,
        mean=mean,
        std=std,
        features="forward" if pooled else "forward_features",
        num_prefix_tokens=prefix,
        keep_prefix_tokens=tokens == "all",
        max_images_per_call=max_images_per_call,
    )


def jepa_frame_encoder(
    name_or_path: str | nn.Module,
    pretrained: bool | str = False,
    *,
    checkpoint_key: str | None = None,
    frame_stride: int = 1,
    image_size: int | Sequence[int] | None = None,
    max_images_per_call: int | None = None,
    **overrides: Any,
) -> FrameEncoder:
    """A jepa video encoder run on single frames (image mode: each frame is repeated to one tubelet).

    Args:
        name_or_path: registry name (``vit_large``, ``vjepa2_vitl_256`` …), a checkpoint source accepted by
            :func:`jepa.load_pretrained` (directory, file, Hub repo id, URL), or a ready encoder module.
        pretrained: for a registry name: ``False`` random, ``True`` its registered weights, or a source.
        checkpoint_key: top-level key of official multi-model files.
        frame_stride, image_size, max_images_per_call: see :class:`FrameEncoder`.
        overrides: ``EncoderConfig`` fields for a registry name (``embed_dim``, ``depth``, ``img_size`` …).

    Returns:
        A :class:`FrameEncoder` (no re-normalisation: jepa encoders take ImageNet-normalised pixels).
    """
    import jepa

    if isinstance(name_or_path, nn.Module):
        if pretrained is not False or overrides:
            raise ValueError("jepa_frame_encoder: `pretrained` / overrides apply to registry names, not to a module")
        encoder = name_or_path
    elif name_or_path in ENCODERS:
        encoder = jepa.create_encoder(name_or_path, pretrained=pretrained, checkpoint_key=checkpoint_key, **overrides)
    else:
        if pretrained is not False or overrides:
            raise ValueError(
                f"jepa_frame_encoder: {name_or_path!r} is not a registered encoder name, so it is read as a "
                f"checkpoint source; `pretrained` and overrides {sorted(overrides)} only apply to registered names"
            )
        encoder = jepa.load_pretrained(name_or_path, checkpoint_key=checkpoint_key).encoder
        if encoder is None:
            raise ValueError(f"jepa_frame_encoder: {name_or_path!r} holds no encoder weights")
    if isinstance(encoder, FrameEncoder):
        raise ValueError(f"jepa_frame_encoder: {name_or_path!r} is already a frame-level encoder")
    return FrameEncoder(
        encoder, frame_stride=frame_stride, image_size=image_size, max_images_per_call=max_images_per_call
    )


def timm_frames(
    model_name: str = "vit_base_patch16_224.augreg_in21k", timm_pretrained: bool = True, **kwargs: Any
) -> FrameEncoder:
    """timm image model per frame (timm extra); override model_name, timm_pretrained, frame_stride, tokens."""
    return timm_frame_encoder(model_name, timm_pretrained, **kwargs)


def jepa_frames(base: str = "vit_large", base_pretrained: bool | str = False, **kwargs: Any) -> FrameEncoder:
    """jepa encoder per frame (image mode); override base (name or checkpoint), base_pretrained, frame_stride."""
    return jepa_frame_encoder(base, base_pretrained, **kwargs)


def register_frame_encoders() -> None:
    """Register ``timm_frames`` and ``jepa_frames`` in :data:`jepa.registry.ENCODERS` (idempotent)."""
    for builder in (timm_frames, jepa_frames):
        if builder.__name__ not in ENCODERS._entries:
            ENCODERS.add(builder.__name__, builder, tags=("frames", "baseline"))


register_frame_encoders()
