"""Frame-level image-encoder baselines (`jepa.encoders.frame_encoder`): the adapter, its builders and the probes.

timm cannot be installed here: the timm path runs against a stand-in `timm` module in `sys.modules` that has the
surface of timm's VisionTransformer the adapter relies on (`create_model(..., num_classes=0)`, `pretrained_cfg`,
`num_prefix_tokens`, `forward_features`, `forward_intermediates`).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import jepa
from jepa.cli import SHIPPED_CONFIGS, main
from jepa.encoders.frame_encoder import IMAGENET_MEAN, IMAGENET_STD, FrameEncoder, timm_frame_encoder
from jepa.probes.pooler import AttentivePooler
from jepa.tasks.probe import ProbeTask

REPO = Path(__file__).resolve().parents[2]
BASELINE_CONFIG = SHIPPED_CONFIGS / "probe" / "baselines" / "timm_vitb_ssv2_probe.yaml"


class PatchMean(nn.Module):
    """Image "encoder": the mean colour of each 8 x 8 patch is a token, (B', 3, H, W) -> (B', H·W/64, 3)."""

    embed_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append(images)
        return F.avg_pool2d(images, 8).flatten(2).transpose(1, 2)


class ImageMean(PatchMean):
    """Pooled image "encoder": (B', 3, H, W) -> (B', 3)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append(images)
        return images.mean(dim=(2, 3))


class FakeTimmViT(nn.Module):
    """A tiny ViT with the timm VisionTransformer API: 1 CLS token, fixed 32 px input, 8 px patches (16 tokens)."""

    num_prefix_tokens = 1

    def __init__(self, dim: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.embed_dim = self.num_features = dim
        self.patch_embed = nn.Conv2d(3, dim, 8, 8)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.ModuleList(nn.Linear(dim, dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.pretrained_cfg = {"input_size": (3, 32, 32), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
        self.seen: list[torch.Tensor] = []

    def _blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        assert x.shape[-2:] == (32, 32), f"timm ViT with a fixed img_size got {tuple(x.shape)}"
        self.seen.append(x)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), self.patch_embed(x).flatten(2).transpose(1, 2)], 1)
        outputs = []
        for block in self.blocks:
            tokens = tokens + torch.tanh(block(tokens))
            outputs.append(tokens)
        return outputs  # depth × (B', 1 + 16, D)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self._blocks(x)[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # num_classes=0: the pooled (CLS) embedding
        return self.forward_features(x)[:, 0]

    def forward_intermediates(self, x, indices, return_prefix_tokens=False, norm=False, output_fmt="NCHW",
                              intermediates_only=False):  # fmt: skip
        assert output_fmt == "NLC" and intermediates_only
        picked = [self.norm(y) if norm else y for i, y in enumerate(self._blocks(x)) if i in indices]
        if return_prefix_tokens:
            return [(y[:, 1:], y[:, :1]) for y in picked]
        return [y[:, 1:] for y in picked]


class ImportWatch:
    """A `sys.meta_path` finder recording imports of timm / torchvision whose importing frame is under `root`."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.attempts: list[tuple[str, str]] = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("timm", "torchvision"):
            frame = sys._getframe(1)
            while frame is not None and ("importlib" in frame.f_code.co_filename or frame.f_code.co_filename[0] == "<"):
                frame = frame.f_back  # skip the import machinery: the first other frame runs the import statement
            if frame is not None and frame.f_code.co_filename.startswith(self.root):
                self.attempts.append((name, frame.f_code.co_filename))
        return None  # the normal finders decide


@pytest.fixture
def fake_timm(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Put a stand-in `timm` module in `sys.modules`; `.calls` records `create_model` arguments, `.models` models."""
    record = types.SimpleNamespace(calls=[], models=[])
    module = types.ModuleType("timm")

    def create_model(model_name: str, pretrained: bool = False, **kwargs) -> FakeTimmViT:
        record.calls.append((model_name, pretrained, kwargs))
        torch.manual_seed(0)
        record.models.append(FakeTimmViT())
        return record.models[-1]

    module.create_model = create_model
    monkeypatch.setitem(sys.modules, "timm", module)
    return record


def frame_id_video(batch: int, frames: int, size: int = 16) -> torch.Tensor:
    """(B, 3, T, H, W) whose frame t of clip b is the constant 10·b + t (channel c adds 100·c)."""
    ids = 10.0 * torch.arange(batch)[:, None] + torch.arange(frames)[None]  # (B, T)
    video = ids[:, None, :, None, None] + 100.0 * torch.arange(3)[None, :, None, None, None]
    return video.expand(-1, -1, -1, size, size).contiguous()


# ---------------------------------------------------------------------------------------------- the adapter
def test_tokens_are_frame_major_and_match_per_frame_encoding() -> None:
    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 16, 24)
    encoder = FrameEncoder(PatchMean())
    tokens = encoder(video)
    assert tokens.shape == (2, 4 * 6, 3)  # T·(2·3 patches)
    for b in range(2):
        for t in range(4):
            expected = F.avg_pool2d(video[b, :, t][None], 8).flatten(2).transpose(1, 2)[0]  # (6, 3)
            torch.testing.assert_close(tokens[b, 6 * t : 6 * (t + 1)], expected)
    # Chunked calls of the image encoder give the same tokens.
    chunked = FrameEncoder(PatchMean(), max_images_per_call=3)
    torch.testing.assert_close(chunked(video), tokens)
    assert [len(x) for x in chunked.image_encoder.seen] == [3, 3, 2]


def test_frame_stride_selects_every_sth_frame_and_images_are_one_frame() -> None:
    video = frame_id_video(batch=2, frames=5)
    encoder = FrameEncoder(PatchMean(), frame_stride=2)
    tokens = encoder(video)  # frames 0, 2, 4 → (B, 3·4, 3)
    assert tokens.shape == (2, 12, 3)
    frame_of_token = tokens[..., 0].unflatten(1, (3, 4))  # (B, T', N): channel 0 holds 10·b + t
    expected = torch.tensor([[0.0, 2.0, 4.0], [10.0, 12.0, 14.0]])[..., None].expand(-1, -1, 4)
    torch.testing.assert_close(frame_of_token, expected)
    assert encoder.config.tubelet_size == 2  # time slots of frozen_probe / image repeats of ProbeTask
    image = video[:, :, 3]  # (B, 3, H, W)
    torch.testing.assert_close(encoder(image), FrameEncoder(PatchMean())(video[:, :, 3:4]))


def test_pooled_encoder_gives_one_token_per_frame() -> None:
    video = frame_id_video(batch=2, frames=4)
    tokens = FrameEncoder(ImageMean(), frame_stride=2)(video)
    assert tokens.shape == (2, 2, 3)
    torch.testing.assert_close(tokens[..., 1], torch.tensor([[100.0, 102.0], [110.0, 112.0]]))


def test_resize_and_renormalisation_reach_the_image_encoder() -> None:
    torch.manual_seed(0)
    video = torch.randn(1, 3, 2, 32, 32)
    inner = PatchMean()
    encoder = FrameEncoder(inner, image_size=16, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))
    assert encoder(video).shape == (1, 2 * 4, 3)
    (seen,) = inner.seen
    frames = video[0].transpose(0, 1)  # (T, 3, H, W)
    resized = F.interpolate(frames, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    pixels = resized * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]
    expected = (pixels - torch.tensor([0.5, 0.4, 0.3])[:, None, None]) / torch.tensor([0.2, 0.3, 0.4])[:, None, None]
    torch.testing.assert_close(seen, expected)
    assert not any("norm_" in key for key in encoder.state_dict())  # constants, not checkpoint entries


def test_frame_encoder_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="cannot tell the token width of Identity"):
        FrameEncoder(nn.Identity())
    with pytest.raises(ValueError, match="got \\(2, 4, 16, 16\\)"):
        FrameEncoder(PatchMean())(torch.zeros(2, 4, 16, 16))
    with pytest.raises(ValueError, match="needs `forward_intermediates`"):
        FrameEncoder(PatchMean())(torch.zeros(1, 3, 2, 16, 16), out_layers=[0])
    with pytest.raises(ValueError, match="expected tokens \\(B', N, D=4\\)"):
        FrameEncoder(PatchMean(), embed_dim=4)(torch.zeros(1, 3, 2, 16, 16))


def test_attentive_probe_on_frame_tokens_cannot_see_frame_order() -> None:
    """A frame-level encoder has no motion information: reversing time gives the same probe output."""
    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 16, 16)
    encoder = jepa.create_encoder("jepa_frames", base="vit_tiny", depth=2, embed_dim=48, num_heads=4).eval()
    pooler = AttentivePooler(48, num_heads=4, depth=1).eval()
    with torch.no_grad():
        forward, backward = pooler(encoder(video)), pooler(encoder(video.flip(2)))
        torch.testing.assert_close(forward, backward)
        video_encoder = jepa.create_encoder("vit_tiny", depth=2, embed_dim=48, num_heads=4).eval()
        assert not torch.allclose(pooler(video_encoder(video)), pooler(video_encoder(video.flip(2))), atol=1e-4)


# ---------------------------------------------------------------------------------------------- builders
def test_jepa_frames_through_create_encoder_matches_the_image_mode_encoder() -> None:
    torch.manual_seed(0)
    encoder = jepa.create_encoder("jepa_frames", base="vit_tiny", depth=2, img_size=32, frame_stride=2)
    assert isinstance(encoder, FrameEncoder) and encoder.embed_dim == 192
    assert encoder.image_encoder.config.depth == 2
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        tokens = encoder(video)  # frames 0 and 2, 2·2 patches each
        levels = encoder(video, out_layers=[0, 1])
        inner = encoder.image_encoder
        assert tokens.shape == (2, 2 * 4, 192)
        torch.testing.assert_close(tokens[:, 4:], inner(video[:, :, 2]))  # image mode of the VideoViT
        torch.testing.assert_close(levels[1], tokens)
        torch.testing.assert_close(levels[0][:, :4], inner(video[:, :, 0], out_layers=[0])[0])
    with pytest.raises(ValueError, match="only apply to registered names"):
        jepa.create_encoder("jepa_frames", base="no/such/checkpoint", depth=2)


def test_jepa_frames_from_a_saved_checkpoint_directory(tmp_path: Path) -> None:
    """`base` may be a jepa checkpoint (e.g. `jepa export` of a pretraining run): its encoder runs per frame."""
    from jepa.hub import save_pretrained

    torch.manual_seed(0)
    trained = jepa.create_encoder("vit_tiny", depth=1, embed_dim=48, num_heads=4).eval()
    directory = save_pretrained(tmp_path / "exported", trained)
    encoder = jepa.create_encoder("jepa_frames", base=str(directory), frame_stride=2).eval()
    for key, value in trained.state_dict().items():
        assert torch.equal(encoder.image_encoder.state_dict()[key], value), key
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(video)[:, :4], trained(video[:, :, 0]))


def test_timm_frames_uses_the_timm_api(fake_timm: types.SimpleNamespace) -> None:
    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 48, 48)  # resized to the model's 32 px input size
    encoder = jepa.create_encoder("timm_frames", model_name="vit_fake", timm_pretrained=False, frame_stride=2)
    assert fake_timm.calls == [("vit_fake", False, {"num_classes": 0})]
    model = fake_timm.models[0]
    assert encoder.embed_dim == 16 and encoder.image_size == (32, 32)
    with torch.no_grad():
        tokens = encoder(video)
        assert tokens.shape == (2, 2 * 16, 16)  # CLS dropped: 16 patch tokens per frame
        (seen,) = model.seen
        frames = video[:, :, ::2].transpose(1, 2).flatten(0, 1)  # (B·T', 3, 48, 48)
        resized = F.interpolate(frames, size=(32, 32), mode="bicubic", align_corners=False, antialias=True)
        pixels = resized * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]
        torch.testing.assert_close(seen, (pixels - 0.5) / 0.25)  # pretrained_cfg mean / std
        full = model.forward_features(seen)  # (B·T', 17, D)
        torch.testing.assert_close(tokens, full[:, 1:].unflatten(0, (2, 2)).flatten(1, 2))
        levels = encoder(video, out_layers=[0, 1])
        torch.testing.assert_close(levels[1], tokens)

        with_cls = timm_frame_encoder("vit_fake", pretrained=True, tokens="all", frame_stride=2)
        torch.testing.assert_close(with_cls(video), full.unflatten(0, (2, 2)).flatten(1, 2))
        assert with_cls(video, out_layers=[1])[0].shape == (2, 2 * 17, 16)  # return_prefix_tokens path
        pooled = timm_frame_encoder("vit_fake", tokens="pooled", frame_stride=2)
        torch.testing.assert_close(pooled(video), full[:, 0].unflatten(0, (2, 2)))
    assert [call[1] for call in fake_timm.calls] == [False, True, True]


def test_missing_timm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'jepa-lightning\[timm\]'"):
        timm_frame_encoder("vit_base_patch16_224")
    with pytest.raises(ImportError, match=r"timm_frame_encoder\('vit_small_patch16_224'\) needs the optional timm"):
        jepa.create_encoder("timm_frames", model_name="vit_small_patch16_224")


# ---------------------------------------------------------------------------------------------- probes
def test_probe_task_freezes_the_frame_encoder() -> None:
    torch.manual_seed(0)
    task = ProbeTask(
        num_classes=3, encoder="jepa_frames", pretrained=False, probe_depth=1, probe_num_heads=4, lrs=[1e-3],
        weight_decays=[0.0], encoder_overrides={"base": "vit_tiny", "depth": 2, "embed_dim": 32, "num_heads": 2},
    )  # fmt: skip
    task.train()
    assert isinstance(task.encoder, FrameEncoder) and not task.encoder.training
    assert not task.encoder.image_encoder.training
    assert not any(p.requires_grad for p in task.encoder.parameters())
    assert not any(k.startswith("encoder.") for k in task.state_dict())
    # Images: ProbeTask repeats them to `config.tubelet_size` frames, the encoder takes one: 4 tokens, not 8.
    (view,) = task.encode([torch.randn(2, 3, 32, 32)], num_segments=1)
    assert view.shape == (2, 4, 32)


def _probe_args(tmp_path: Path, videos, steps: int) -> list[str]:
    return [
        "--config", str(BASELINE_CONFIG),
        "--data.train", videos.csvs["train"], "--data.val", videos.csvs["val"],
        "--data.frames_per_clip", "4", "--data.crop_size", "32", "--data.batch_size", "2", "--data.num_workers", "0",
        "--model.init_args.probe_depth", "1",
        "--model.init_args.export_best_probe", str(tmp_path / "probe.pt"),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(steps), "--trainer.limit_val_batches", "1",
        "--trainer.num_sanity_val_steps", "0", "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.precision", "32",
    ]  # fmt: skip


def test_shipped_timm_baseline_config_fits(tmp_path: Path, tiny_videos, fake_timm: types.SimpleNamespace) -> None:
    """The shipped recipe as written (encoder timm_frames, its sweep, 2 segments × 3 views), with the stand-in timm."""
    torch.manual_seed(0)
    overrides = "{model_name: vit_fake, timm_pretrained: false, frame_stride: 2}"
    cli = main(["fit", *_probe_args(tmp_path, tiny_videos, 1), "--model.init_args.encoder_overrides", overrides])
    task = cli.model
    assert fake_timm.calls == [("vit_fake", False, {"num_classes": 0})]
    assert cli.trainer.global_step == 1 and len(task.sweep) == 20
    assert isinstance(task.encoder, FrameEncoder) and not any(p.requires_grad for p in task.encoder.parameters())
    # 2 videos × 2 segments × (1 training view, 3 validation views) × 2 frames (frame_stride 2 of 4), 32 px.
    assert [tuple(x.shape) for x in fake_timm.models[0].seen] == [
        (2 * 2 * 1 * 2, 3, 32, 32),
        (2 * 2 * 3 * 2, 3, 32, 32),
    ]
    assert "val/best_top1" in cli.trainer.callback_metrics
    assert len(torch.load(tmp_path / "probe.pt", weights_only=True)["classifiers"]) == 1


def test_jepa_fit_with_jepa_frames_imports_no_timm(tmp_path: Path, tiny_videos, monkeypatch) -> None:
    """`jepa fit` (the CLI entry of `python -m jepa`) with encoder jepa_frames for 2 steps; jepa code asks for
    neither timm nor torchvision meanwhile."""
    torch.manual_seed(0)
    watch = ImportWatch(str(REPO / "jepa"))
    monkeypatch.setattr(sys, "meta_path", [watch, *sys.meta_path])
    args = ["fit", *_probe_args(tmp_path, tiny_videos, 2)]
    args += ["--model.init_args.encoder", "jepa_frames", "--model.init_args.lrs", "[1.0e-3]",
             "--model.init_args.weight_decays", "[0.01, 0.1]", "--model.init_args.encoder_overrides",
             "{base: vit_tiny, depth: 2, embed_dim: 32, num_heads: 2, img_size: 32, frame_stride: 2}"]  # fmt: skip
    cli = main(args)
    assert watch.attempts == []
    task = cli.model
    assert cli.trainer.global_step == 2 and len(task.sweep) == 2
    assert isinstance(task.encoder, FrameEncoder) and task.encoder.frame_stride == 2
    assert not task.encoder.training and not any(p.requires_grad for p in task.encoder.parameters())
    (last,) = tmp_path.rglob("last.ckpt")
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["hyper_parameters"]["encoder"] == "jepa_frames"
    assert not any(k.startswith("encoder.") for k in checkpoint["state_dict"])  # frozen: rebuilt, not saved


def test_import_jepa_and_jepa_frames_never_import_timm_or_torchvision() -> None:
    """In a fresh interpreter: `import jepa`, build and run `jepa_frames`; no timm / torchvision anywhere."""
    script = textwrap.dedent(inspect.getsource(ImportWatch)) + textwrap.dedent(
        f"""
        watch = ImportWatch({str(REPO / "jepa")!r})
        sys.meta_path.insert(0, watch)
        import torch
        import jepa

        encoder = jepa.create_encoder("jepa_frames", base="vit_tiny", depth=1, frame_stride=2)
        assert encoder(torch.randn(1, 3, 4, 32, 32)).shape == (1, 8, 192)
        print("ATTEMPTS", watch.attempts)
        print("LOADED", sorted(m for m in sys.modules if m.split(".")[0] in ("timm", "torchvision")))
        """
    )
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", "import sys\n" + script], capture_output=True, text=True,
                            env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ATTEMPTS []" in result.stdout and "LOADED []" in result.stdout, result.stdout


def test_frame_baselines_refuse_task_level_pretrained() -> None:
    """Weights of the frame baselines come from their overrides; `pretrained=True` fails before building."""
    import jepa

    with pytest.raises(ValueError, match="timm_pretrained"):
        jepa.create_encoder("jepa_frames", pretrained=True)
