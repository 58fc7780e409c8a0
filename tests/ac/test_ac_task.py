"""ActionConditionedTask: the official losses, frozen encoding, WSD schedule, CLI recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jepa.tasks.action_conditioned import ActionConditionedTask

ENC = {"img_size": 32, "num_frames": 2, "depth": 1, "embed_dim": 48, "num_heads": 2}
PRED = {"embed_dim": 32, "depth": 1, "num_heads": 2}


def _task(**kwargs) -> ActionConditionedTask:
    torch.manual_seed(0)
    return ActionConditionedTask(encoder="vit_tiny", encoder_overrides=ENC, predictor_overrides=PRED, **kwargs)


def _batch(frames: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "clip": torch.randn(2, 3, frames, 32, 32, generator=g),
        "actions": torch.randn(2, frames - 1, 7, generator=g),
        "states": torch.randn(2, frames, 7, generator=g),
    }


def test_losses_follow_the_official_definition():
    task = _task(auto_steps=2)
    batch = _batch()
    loss, stats = task.compute_loss(batch)
    ln = lambda x: F.layer_norm(x, (x.shape[-1],))  # noqa: E731
    clips = batch["clip"]
    per_frame = [ln(task.encoder(clips[:, :, t : t + 1].expand(-1, -1, 2, -1, -1))) for t in range(4)]
    h = torch.cat(per_frame, dim=1)  # (B, 4·N, D): each frame encoded alone as a 2-frame clip
    n = per_frame[0].shape[1]
    a, s, p = batch["actions"], batch["states"], task.predictor
    z_tf = ln(p(h[:, : 3 * n], a, s[:, :3]))
    loss_tf = (z_tf - h[:, n:]).abs().mean()
    z2 = ln(p(torch.cat([h[:, :n], z_tf[:, :n]], 1), a[:, :2], s[:, :2]))[:, -n:]
    loss_ro = (torch.cat([z_tf[:, :n], z2], 1) - h[:, n : 3 * n]).abs().mean()
    torch.testing.assert_close(stats["loss_tf"], loss_tf.detach())
    torch.testing.assert_close(stats["loss_ro"], loss_ro.detach())
    torch.testing.assert_close(loss, loss_tf + loss_ro)
    loss.backward()
    assert all(q.grad is None for q in task.encoder.parameters())  # frozen
    assert task.predictor.predictor_embed.weight.grad.abs().sum() > 0


def test_rollout_variants_and_disabling():
    batch = _batch()
    fixed = _task(rollout_form="fixed").compute_loss(batch)[1]
    pre_fix = _task(rollout_form="pre_fix").compute_loss(batch)[1]
    torch.testing.assert_close(fixed["loss_tf"], pre_fix["loss_tf"])
    assert not torch.allclose(fixed["loss_ro"], pre_fix["loss_ro"])
    only_tf = _task(auto_steps=1).compute_loss(batch)
    assert "loss_ro" not in only_tf[1] and torch.allclose(only_tf[0], fixed["loss_tf"])
    with pytest.raises(ValueError, match="actions"):
        _task().compute_loss({**batch, "actions": batch["actions"][:, :2]})


def test_wsd_schedule_official_numbers():
    task = _task()  # defaults: official 300 ipe, 315 epochs, 15 warmup, 15 anneal
    sched = task.lr_schedule
    assert sched.value(0) == pytest.approx(7.5e-5) and sched.value(4500) == pytest.approx(4.25e-4)
    assert sched.value(90000) == pytest.approx(4.25e-4) and sched.value(94500) == pytest.approx(0.0, abs=1e-12)
    assert sched.value(92250) == pytest.approx(4.25e-4 / 2, rel=1e-3)


def test_cli_fit_sim_recipe_and_droid_recipe_parse(tmp_path, capsys):
    from jepa.cli import main
    from jepa.planning.commands import collect

    data = tmp_path / "reacher"
    collect(str(data), trajectories=2, length=10, image_size=32)
    main(["fit", "--config", "ac/sim_tiny.yaml", "--data.init_args.root", str(data),
          "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0", "--data.init_args.crop_size", "32",
          "--model.init_args.encoder_overrides", str(ENC), "--model.init_args.predictor_overrides", str(PRED),
          "--trainer.fast_dev_run", "1", "--trainer.default_root_dir", str(tmp_path / "run"),
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "ac/droid_vitg_256px_8f.yaml", "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "ActionConditionedTask" in printed and "TrajectoryDataModule" in printed and "0.000425" in printed
    assert np.isfinite(1.0)
