"""``clr-rl``: a thin command line over the Python API.

Bad input (a ``ConfigError`` from the library) prints one line ``clr-rl: error: ...`` and
exits with status 2, before anything is written; any other exception is a crash (traceback,
exit status 1). Heavy libraries (torch, SB3,
gymnasium) are imported only inside the commands that use them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _validating(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """For commands whose library functions validate with plain ValueError (schedules, tradeoff,
    tensorboard): such an error is bad input (exit 2). Not for commands that train in this process."""
    def wrapped(args: argparse.Namespace) -> int:
        from clr_rl.errors import config_errors

        with config_errors():
            return func(args)
    return wrapped


@_validating
def _schedule_cmd(args: argparse.Namespace) -> int:
    from clr_rl.run.limits import MAX_POINTS
    from clr_rl.schedules.text import bind_total_timesteps, parse_schedule

    if not 1 <= args.timesteps <= 10**12:
        raise ValueError(f"--timesteps={args.timesteps} must be in [1, 10^12]")
    if not 2 <= args.points <= MAX_POINTS:
        raise ValueError(f"--points={args.points} must be in [2, {MAX_POINTS}] (a size limit)")
    schedule = bind_total_timesteps(parse_schedule(args.spec), args.timesteps)
    schedule(1.0)
    if args.png is not None:
        _check_png(args.png)
    print(f"{schedule!r}")
    print(f"{'timestep':>12}  {'progress_remaining':>18}  {'lr':>12}")
    for i in range(args.points):
        t = round(args.timesteps * i / (args.points - 1))
        p = 1 - t / args.timesteps
        print(f"{t:>12d}  {p:>18.4f}  {schedule(p):>12.6g}")
    if args.png is not None:
        from clr_rl.schedules.plot import plot_schedule

        plot_schedule(schedule, args.timesteps, args.png)
        print(f"wrote {args.png}")
    return 0


def _check_png(path: Path) -> None:
    """The PNG target, checked before anything is printed or written: a .png name, not a folder, in a
    folder that exists or can be made, and that this user may write to."""
    import os

    if path.suffix.lower() != ".png":
        raise ValueError(f"--png={str(path)!r} must end in .png")
    if path.is_dir():
        raise ValueError(f"--png={str(path)!r} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"--png={str(path)!r} exists and is not writable")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--png={str(path)!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--png={str(path)!r}: {str(parent)!r} is not writable (read-only or not yours)")


def _train_cmd(args: argparse.Namespace) -> int:
    from clr_rl.errors import Diverged
    from clr_rl.run.prepare import check_out_dir, prepare
    from clr_rl.run.record import Status
    from clr_rl.run.train import resume, train

    try:
        if args.resume:
            record = resume(args.out, progress_bar=not args.no_progress, trust_checkpoints=args.trust_checkpoints)
        else:
            prepared = prepare(_run_config(args))
            check_out_dir(args.out)
            record = train(prepared, args.out, progress_bar=not args.no_progress)
    except Diverged as exc:
        print(f"clr-rl: the run diverged: {exc} (recorded as diverged in {args.out / 'run.json'})", file=sys.stderr)
        return 1
    if record.status == Status.INTERRUPTED:
        print(f"interrupted at {record.timesteps_done} timesteps; continue with: "
              f"clr-rl train --resume --out {args.out}")
        return 130
    final, cfg = record.final_eval, record.config
    print(f"finished {cfg['algo']} on {cfg['env_id']} with {cfg['schedule']}: "
          f"final return {final['mean_return']:.2f} +/- {final['std_return']:.2f} ({final['episodes']} episodes), "
          f"AUC {record.auc:.2f}, {record.wall_seconds:.1f} s -> {args.out}")
    return 0


def _add_setting_flags(p: argparse.ArgumentParser) -> None:
    """``clr-rl train``'s flags, one per run setting that has one (see ``RunConfig``)."""
    from clr_rl.run.config import RunConfig

    for name, s in RunConfig.settings().items():
        if s.flag is None:
            continue
        default = RunConfig.__dataclass_fields__[name].default
        if isinstance(default, bool):
            p.add_argument(s.flag, dest=name, action="store_true", help=s.help)
        elif name == "overrides":
            p.add_argument(s.flag, dest=name, action="append", default=[], metavar="KEY=VALUE", help=s.help)
        else:
            kwargs: dict[str, Any] = {"type": int} if s.parse is int else {}
            p.add_argument(s.flag, dest=name, choices=s.choices, help=s.help,
                           default=None if default in ("", 0) else default, **kwargs)


def _run_config(args: argparse.Namespace) -> Any:
    """A RunConfig from ``train``'s flags: each setting parsed by its own rule, flags named in errors."""
    from clr_rl.errors import ConfigError, config_errors
    from clr_rl.run.agents import parse_overrides
    from clr_rl.run.config import RunConfig

    kwargs: dict[str, Any] = {}
    for name, s in RunConfig.settings().items():
        if s.flag is None:
            continue
        value = getattr(args, name)
        if value is None:
            if name in ("env_id", "timesteps"):
                raise ConfigError(f"{s.flag} is required (unless --resume)")
            continue
        try:
            if name == "overrides":
                value = parse_overrides(value)
            elif s.parse is not None and isinstance(value, str):
                value = s.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{s.flag}={value!r}: {exc}") from None
        kwargs[name] = value
    if "schedule" not in kwargs:  # default: the env's fixed LR shipped in agents/ (constant)
        from clr_rl.run.agents import agent_config
        from clr_rl.run.envs import env_family

        with config_errors():
            agent = agent_config(kwargs.get("algo", "ppo"), kwargs["env_id"], env_family(kwargs["env_id"]),
                                 kwargs.get("overrides", {}))
        kwargs["schedule"] = f"constant:lr={agent.tuned_lr:g}"
        kwargs["lr_provenance"] = (f"--schedule not given: agents/{kwargs.get('algo', 'ppo')}.toml "
                                   f"{agent.tuned_lr_source}")
    return RunConfig(**kwargs)


def _compare_cmd(args: argparse.Namespace) -> int:
    from clr_rl.compare.driver import compare

    return compare(args.spec, out=args.out, workers=args.workers, dry_run=args.dry_run,
                   retry_failed=args.retry_failed, backend=args.backend, address=args.address, device=args.device,
                   calibrate_speeds=args.calibrate, trust_checkpoints=args.trust_checkpoints)


def _sweep_args(args: argparse.Namespace) -> dict[str, Any]:
    """``tune`` / ``lr-range``: the flags that no library check sees before a run starts (``--hp`` parsed,
    ``--seed`` a numpy seed, ``--workers`` positive), as bad input (exit 2). Not ``_validating``: these
    commands train in this process, where a ValueError is not bad input."""
    from clr_rl.errors import config_errors
    from clr_rl.run.agents import parse_overrides
    from clr_rl.run.limits import check_seed

    with config_errors():
        overrides = parse_overrides(args.hp)
        check_seed("--seed", args.seed)
        for flag in ("workers", "eval_every", "eval_episodes"):
            value = getattr(args, flag)
            if value is not None and value < 1:
                raise ValueError(f"--{flag.replace('_', '-')}={value} must be >= 1")
    return overrides


def _tune_cmd(args: argparse.Namespace) -> int:
    from clr_rl.execute.options import ExecOptions
    from clr_rl.phases.tune import tune

    overrides = _sweep_args(args)
    record = tune(algo=args.algo, env_id=args.env, timesteps=args.timesteps, seeds=args.seeds, out=args.out,
                  grid=args.grid, trials=args.trials, lr_range=args.range, criterion=args.criterion,
                  overrides=overrides, eval_every=args.eval_every,
                  eval_episodes=args.eval_episodes, device=args.device, seed=args.seed,
                  options=ExecOptions(workers=args.workers, trust_checkpoints=args.trust_checkpoints))
    return 1 if record["exit_status"] else 0


def _lr_range_cmd(args: argparse.Namespace) -> int:
    from clr_rl.phases.lr_single import lr_range_single
    from clr_rl.phases.lr_sweep import lr_range_sweep
    from clr_rl.phases.tune import parse_range

    overrides = _sweep_args(args)
    if args.method == "sweep":
        from clr_rl.execute.options import ExecOptions

        lr_range_sweep(algo=args.algo, env_id=args.env, timesteps=args.timesteps, out=args.out, grid=args.grid,
                       seeds=args.seeds, criterion=args.criterion, overrides=overrides,
                       eval_every=args.eval_every, eval_episodes=args.eval_episodes, device=args.device,
                       budget=args.budget,
                       options=ExecOptions(workers=args.workers, trust_checkpoints=args.trust_checkpoints))
    else:
        lo, hi = parse_range(args.range)
        lr_range_single(algo=args.algo, env_id=args.env, timesteps=args.timesteps, out=args.out, start_lr=lo,
                        end_lr=hi, overrides=overrides, seed=args.seed, device=args.device, points=args.points)
    return 0


@_validating
def _tradeoff_cmd(args: argparse.Namespace) -> int:
    from clr_rl.errors import ConfigError
    from clr_rl.phases.tradeoff import tradeoff
    from clr_rl.run.agents import parse_overrides

    max_lr: float | str = args.max_lr
    if max_lr != "tuned":
        try:
            max_lr = float(max_lr)
        except ValueError:
            raise ConfigError(f"--max-lr={args.max_lr!r} must be a number or 'tuned'") from None
    from clr_rl.execute.options import ExecOptions

    result = tradeoff(algo=args.algo, env_id=args.env, timesteps=args.timesteps, cycles=args.cycles, out=args.out,
                      t_mult=args.t_mult, min_lr_fraction=args.min_lr_fraction, max_lr=max_lr, seeds=args.seeds,
                      workers=args.workers, validate=args.validate, eval_episodes=args.eval_episodes,
                      overrides=parse_overrides(args.hp), device=args.device,
                      options=ExecOptions(workers=args.workers, trust_checkpoints=args.trust_checkpoints))
    print(f"wrote {args.out / 'tradeoff.csv'}, {args.out / 'tradeoff.png'}"
          + (f", {args.out / 'gap.csv'}" if args.validate else ""))
    return 1 if result["exit_status"] else 0


def _status_cmd(args: argparse.Namespace) -> int:
    from clr_rl.execute.summary import print_status

    return print_status(args.dir)


def _report_cmd(args: argparse.Namespace) -> int:
    from clr_rl.analysis.report import report

    return report(args.dir, baseline=args.baseline, reps=args.reps, seed=args.seed, margin=args.margin)


@_validating
def _tensorboard_cmd(args: argparse.Namespace) -> int:
    from clr_rl.analysis.tensorboard import serve

    return serve(args.dir, port=args.port)


_TRUST_HELP = ("resume from checkpoints that this user's key did not sign (folders from others, or from before "
               "checkpoints were signed): their model.zip / vecnormalize.pkl / replay_buffer.pkl are pickles, which "
               "run code when loaded; pass this only for folders you trust")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clr-rl", description="Cyclical learning rates for SB3 PPO/DQN: schedules, training, comparisons.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("schedule", help="print and draw a schedule before training with it")
    p.add_argument("spec", help="e.g. triangular2:base_lr=1e-4,max_lr=1e-3,cycles=4")
    p.add_argument("--timesteps", type=int, required=True, help="the run's budget")
    p.add_argument("--points", type=int, default=11, help="how many points to print (default 11)")
    p.add_argument("--png", type=Path, help="draw the curve into this PNG file")
    p.set_defaults(func=_schedule_cmd)

    p = sub.add_parser("train", help="train one PPO/DQN agent with a schedule")
    _add_setting_flags(p)
    p.add_argument("--out", type=_out_path, required=True, help="new folder for the run")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--trust-checkpoints", action="store_true", help=_TRUST_HELP)
    p.set_defaults(func=_train_cmd)

    p = sub.add_parser("compare", help="run a comparison spec: envs x arms x seeds")
    p.add_argument("spec", type=Path, help="spec TOML file")
    p.add_argument("--out", type=_out_path, help="results folder (default results/<spec name>)")
    p.add_argument("--workers", type=int, help="parallel runs (default: CPU count)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their estimated cost; train nothing")
    p.add_argument("--calibrate", action="store_true",
                   help="measure this machine's speed for each configuration not yet measured here (a short timed "
                        "run each, cached in ~/.cache/clr-rl/speeds.json); estimates always use the speeds cached "
                        "there, else a fixed speed table")
    p.add_argument("--retry-failed", action="store_true", help="rerun runs recorded as failed")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="Ray cluster address (auto or ray://HOST:PORT); default: a local Ray")
    p.add_argument("--device", help="override the spec's device: auto, cpu, cuda or cuda:<k>")
    p.add_argument("--trust-checkpoints", action="store_true", help=_TRUST_HELP)
    p.set_defaults(func=_compare_cmd)

    for name, helptext in (("tune", "tune a fixed LR by sweep or Optuna TPE; writes tuned_lr.json"),
                           ("lr-range", "LR range test for RL; prints a cyclical schedule to use")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--algo", choices=("ppo", "dqn"), default="ppo")
        p.add_argument("--env", required=True)
        p.add_argument("--timesteps", type=int, required=True, help="budget of each run")
        p.add_argument("--out", type=_out_path, required=True)
        p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--device", default="auto")
        p.add_argument("--workers", type=int)
        p.add_argument("--eval-every", type=int)
        p.add_argument("--eval-episodes", type=int)
        p.add_argument("--criterion", choices=("auc", "final"), default="auc",
                       help="score of an LR: mean over seeds of the AUC (default) or the final return")
        p.add_argument("--seed", type=int, default=0, help="Optuna sampler seed / the single run's seed")
        p.add_argument("--trust-checkpoints", action="store_true", help=_TRUST_HELP)
        if name == "tune":
            p.add_argument("--seeds", type=int, default=3)
            p.add_argument("--grid", metavar="LO:HI:N", help="log grid of fixed LRs, e.g. 1e-5:1e-2:7")
            p.add_argument("--trials", type=int, help="Optuna TPE trials instead of a grid")
            p.add_argument("--range", default="1e-5:1e-2", metavar="LO:HI", help="LR range for --trials")
            p.set_defaults(func=_tune_cmd)
        else:
            p.add_argument("--method", choices=("sweep", "single"), default="sweep")
            p.add_argument("--seeds", type=int, default=2, help="seeds per LR (sweep)")
            p.add_argument("--grid", default="1e-5:1e-2:7", metavar="LO:HI:N", help="LRs of the sweep")
            p.add_argument("--budget", type=int, metavar="N",
                           help="sweep: the timesteps of the runs the range is for; shorter DQN sweep runs then "
                                "explore as the start of such a run (their exploration_fraction scaled by N / "
                                "--timesteps)")
            p.add_argument("--range", default="1e-6:1e-1", metavar="LO:HI", help="LR ramp of the single run")
            p.add_argument("--points", type=int, default=24,
                           help="single run: LR points to measure at least (a budget too small is refused)")
            p.set_defaults(func=_lr_range_cmd)

    p = sub.add_parser("tradeoff", help="return vs training budget from one run of cosine restarts "
                                        "(Portes et al. 2022); --validate trains separate runs per budget")
    p.add_argument("--algo", choices=("ppo", "dqn"), default="ppo")
    p.add_argument("--env", required=True)
    p.add_argument("--timesteps", type=int, required=True,
                   help="length of the single run (rounded so every cycle ends on an LR update)")
    p.add_argument("--cycles", type=int, required=True, help="number of cycles = budget points (>= 2)")
    p.add_argument("--t-mult", type=float, default=2.0, help="each cycle is t_mult x the previous (> 1, default 2)")
    p.add_argument("--min-lr-fraction", type=float, default=0.0, help="min_lr = fraction x max_lr (default 0)")
    p.add_argument("--max-lr", default="tuned", help="peak LR, or 'tuned': the env's tuned fixed LR (default)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, help="parallel runs (default: CPU count)")
    p.add_argument("--validate", action="store_true",
                   help="also train separate runs from scratch at each budget (one cosine each) and report the gap")
    p.add_argument("--eval-episodes", type=int, help="episodes per evaluation (default from envs/ or 10)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=_out_path, required=True)
    p.add_argument("--trust-checkpoints", action="store_true", help=_TRUST_HELP)
    p.set_defaults(func=_tradeoff_cmd)

    p = sub.add_parser("status", help="progress of a batch (running or finished)")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=_status_cmd)

    p = sub.add_parser("report", help="statistics, plots and report.md for a batch")
    p.add_argument("dir", type=Path)
    p.add_argument("--baseline", help="arm to compare against (default: the spec's fixed-tuned arm)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--margin", type=float, default=None,
                   help="equivalence margin on P(improvement), in (0, 0.5); default: the spec's [report] margin, "
                        "else 0.1")
    p.set_defaults(func=_report_cmd)

    p = sub.add_parser("tensorboard", help="start TensorBoard on a batch")
    p.add_argument("dir", type=Path)
    p.add_argument("--port", type=int, default=6006)
    p.set_defaults(func=_tensorboard_cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, call one library function, print. Exit status: 0 done, 1 a crash or failed runs,
    2 bad input (a ``ConfigError``: one line, nothing written), 130 interrupted."""
    from clr_rl.errors import ConfigError, StateError, describe_os_error

    parser = _parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        if isinstance(getattr(args, "out", None), str):  # see _out_path
            raise ConfigError("--out='' must name a folder (an empty path would write into the current folder)")
        return func(args)
    except ConfigError as exc:
        print(f"clr-rl: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except StateError as exc:
        print(f"clr-rl: error: {_first_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (clr-rl status DIR | head -1): stop quietly
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        print("clr-rl: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        line = describe_os_error(exc)
        if line is None:
            raise
        _print_last_words(f"clr-rl: error: {line}")
        return 1
    except Exception:
        import traceback

        traceback.print_exc()
        print("clr-rl: crashed (the traceback above; a run's run.json records it too)", file=sys.stderr)
        return 1


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush raises no second BrokenPipeError
    (the recipe of Python's signal documentation)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def _print_last_words(line: str) -> None:
    """One line on stderr (which may sit on the same full disk: then there is no one to tell)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:  # pragma: no cover
        pass


def _out_path(text: str) -> Path | str:
    """``--out``: a Path; an empty text is kept as ``""`` so :func:`main` refuses it by name (argparse
    would turn it into ``.``, the current folder)."""
    return Path(text) if text.strip() else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
