"""The ``jepa`` command line: a thin ``LightningCLI`` plus typed-function commands.

``jepa fit|validate|test|predict --config RECIPE.yaml`` builds a task (a :class:`jepa.tasks.BaseTask` subclass) and
a ``LightningDataModule`` from YAML (``class_path``/``init_args``). A bare config name that is not a file in the
working directory resolves to the recipes shipped inside the package (``jepa configs`` lists them).
``convert``, ``download``, ``configs`` and ``data …`` are plain typed functions dispatched by jsonargparse; their
docstrings are their ``--help``.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jepa.recipes import SHIPPED_CONFIGS, resolve_config, shipped_configs

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
CONFIG_FLAGS = ("--config", "-c")
SECTION_FLAGS = ("--model", "--data", "--trainer", "--optimizer", "--lr_scheduler")


def _resolve_config_arguments(argv: list[str]) -> list[str]:
    """Rewrite config values so that shipped recipes can be named bare.

    ``--config X`` / ``--config=X`` / ``-c X`` always resolve through :func:`resolve_config`; a section given as a
    YAML file (``--data videomix22m.yaml``, ``--model=…yaml``) resolves the same way when it is not a file here.
    """

    def resolve(flag: str, value: str) -> str:
        if flag in CONFIG_FLAGS or (value.endswith((".yaml", ".yml")) and not Path(value).is_file()):
            return resolve_config(value)
        return value

    resolved: list[str] = []
    index = 0
    while index < len(argv):
        argument = argv[index]
        flag = argument.split("=", 1)[0]
        if flag in CONFIG_FLAGS or flag in SECTION_FLAGS:
            if "=" in argument:
                resolved.append(f"{flag}={resolve(flag, argument.split('=', 1)[1])}")
            elif index + 1 < len(argv):
                resolved += [argument, resolve(flag, argv[index + 1])]
                index += 1
            else:
                resolved.append(argument)
        else:
            resolved.append(argument)
        index += 1
    return resolved


def configs(pattern: str | None = None, paths: bool = False) -> list[str]:
    """List the recipes shipped with jepa (usable as `jepa fit --config NAME.yaml` from any directory).

    Args:
        pattern: only recipes whose relative path contains this text (e.g. ``probe`` or ``vitl``).
        paths: print absolute file paths instead of names.
    """
    rows = []
    for path in shipped_configs():
        relative = path.relative_to(SHIPPED_CONFIGS).as_posix()
        if pattern is None or pattern in relative:
            rows.append(str(path) if paths else relative)
    print("\n".join(rows) if rows else f"no shipped recipe matches {pattern!r}")
    return rows


# ---------------------------------------------------------------------- LightningCLI
def _lightning_cli(argv: list[str]) -> Any:
    from lightning.pytorch import LightningDataModule
    from lightning.pytorch.cli import LightningCLI

    class JepaLightningCLI(LightningCLI):
        """LightningCLI that restores `--ckpt_path` checkpoints with `torch.load(weights_only=True)` by default."""

        def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
            kwargs = super()._prepare_subcommand_kwargs(subcommand)
            if kwargs.get("ckpt_path") is not None and kwargs.get("weights_only") is None:
                kwargs["weights_only"] = True  # never unpickle arbitrary objects from a checkpoint
            return kwargs

        def _parse_ckpt_path(self) -> None:
            """``--ckpt_path``: the checkpoint's model hyper-parameters fill in what the config files and the
            command line leave unset; what the user wrote wins.

            Lightning 2.6 merges them on top of the parsed config instead, so ``jepa fit --config X --ckpt_path C
            --model.init_args.data_resume official`` silently resumed with the checkpoint's value
            (Lightning-AI/pytorch-lightning#21455). Here they become the model's parser defaults and the same
            arguments are parsed again.
            """
            subcommand = self.config.get("subcommand")
            ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
            if not ckpt_path or not Path(ckpt_path).is_file():
                return
            import torch

            # mmap: only the hyper-parameters are read here, not the tensors (Lightning loads the file again to restore)
            checkpoint = torch.load(ckpt_path, weights_only=True, map_location="cpu", mmap=True)
            hparams = dict(checkpoint.get("hyper_parameters") or {})
            hparams.pop("_instantiator", None)
            class_path = hparams.pop("_class_path", None)
            if not hparams or class_path is None:  # not saved through the CLI: Lightning's own handling
                super()._parse_ckpt_path()
                return
            subparser = self._subcommand_parsers[subcommand]
            subparser.set_defaults(model={"class_path": class_path, "init_args": hparams})
            self.config = self.parser.parse_args(sys.argv[1:])

    import jepa.data.datamodules  # noqa: F401  (imported so short class names resolve in YAML)
    import jepa.data.ek100  # noqa: F401
    import jepa.data.inference  # noqa: F401
    import jepa.tasks  # noqa: F401
    from jepa.tasks.base import BaseTask

    # LightningCLI reads sys.argv when `args` is None; setting it (rather than passing `args`) keeps in-process
    # calls such as `main([...])` in tests identical to the console script.
    saved_argv = sys.argv
    sys.argv = ["jepa", *_resolve_config_arguments(argv)]
    try:
        return JepaLightningCLI(
            BaseTask,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"default_env": False},
        )
    finally:
        sys.argv = saved_argv


# ---------------------------------------------------------------------- typed-function commands
def _function_commands() -> dict[str, Any]:
    from jepa.data.commands import shards, synth
    from jepa.export import export
    from jepa.hub.convert import convert, download
    from jepa.mllm.commands import ask
    from jepa.planning.commands import collect, landscape, plan

    return {
        "convert": convert,
        "download": download,
        "configs": configs,
        "export": export,
        "data": {"shards": shards, "synth": synth},
        "ask": ask,
        "plan": {"collect": collect, "run": plan, "landscape": landscape},
    }


FUNCTION_COMMANDS = ("convert", "download", "configs", "export", "data", "ask", "plan")

OVERVIEW = """usage: jepa COMMAND [options]

V-JEPA 2 video world models in PyTorch Lightning.

training and evaluation (LightningCLI; `jepa COMMAND --help` for all options):
  fit        train a task:            jepa fit --config quickstart.yaml
  validate   evaluate on val data:    jepa validate --config vitl_ssv2_probe.yaml --ckpt_path probe.ckpt
  test       evaluate on test data
  predict    run inference:           jepa predict --config vitl_features.yaml --data.inputs videos/

checkpoints and data:
  convert    convert a checkpoint between layouts:  jepa convert SRC DST --to {hf,official,jepa}
  download   fetch released weights into the cache: jepa download vitl
  configs    list the recipes shipped with jepa:    jepa configs [--pattern probe]
  export     pretraining checkpoint → weights:      jepa export CKPT DIR [--to {jepa,official,hf}]
  data       datasets: `jepa data synth OUT_DIR`, `jepa data shards INPUT OUT_DIR`

models:
  ask        answer a question about a video:       jepa ask VIDEO "QUESTION" HEAD.ckpt [--options '[...]']
  plan       robot planning with V-JEPA 2-AC:       jepa plan collect OUT | jepa plan run --config plan_sim_tiny.yaml
             (also `jepa plan landscape CKPT`: energy over a grid of actions, to PNG)

A bare --config name (e.g. vitl_ssv2_probe.yaml) resolves to the shipped recipe when no such file exists here.
"""


def main(args: Sequence[str] | None = None) -> Any:
    """Entry point of the ``jepa`` console script and ``python -m jepa``; tests call it in-process."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(OVERVIEW)
        return None
    command = argv[0]
    if command in ("-V", "--version"):
        import jepa

        print(jepa.__version__)
        return None
    if command in TRAINER_COMMANDS:
        return _lightning_cli(argv)
    if command in FUNCTION_COMMANDS:
        from jsonargparse import CLI

        commands = _function_commands()
        result = CLI({command: commands[command]}, args=argv, as_positional=True)
        if isinstance(result, Path):  # e.g. `jepa download` / `jepa convert`: say where the files are
            print(result)
        return result
    close = difflib.get_close_matches(command, TRAINER_COMMANDS + FUNCTION_COMMANDS, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    print(f"jepa: unknown command {command!r}.{hint}\n\n{OVERVIEW}", file=sys.stderr)
    raise SystemExit(2)


def console_main() -> None:
    """Console-script entry point: runs :func:`main`, whose return value is for in-process callers, not an exit code."""
    main()


if __name__ == "__main__":  # pragma: no cover
    console_main()
