"""The ``kdviz`` command: ``kdviz tasks``, ``finetune``, ``distill``, ``reproduce``, ``predict``, ``export`` and ``cache
list|clear``.

Building the parser imports nothing heavy: a command's options are added when that command is parsed
or its help is shown (:class:`LazyParser`), and its modules (torch, transformers, datasets) are
imported when it runs, so ``kdviz --help`` starts in a fraction of a second. Every command spells
its options the same way (``--output-dir``, ``--learning-rate``); the older spellings still work for
a while, with a one-line warning that names the new one (:data:`kdviz.cli_parsing.ALIASES_REMOVED_AFTER`).
"""

from __future__ import annotations

import argparse
import os
import sys

from kdviz.cli_parsing import LazyParser, add_older_spelling, boolean
from kdviz.config_options import add_config_arguments, option_values

REPORT_TO_HELP = "where training also logs: none (default), all, or transformers' integrations, comma-separated " \
                 "(tensorboard,wandb,mlflow...)"


def _tasks(args: argparse.Namespace) -> int:
    from kdviz.tasks import format_task_table

    print(format_task_table())
    return 0


def _finetune(args: argparse.Namespace) -> int:
    if not args.output_dir:
        raise ValueError("the folder for the fine-tuned teacher is missing: give --output-dir FOLDER.")
    from kdviz.finetune import finetune
    from kdviz.report import format_metrics_table

    result = finetune(
        args.task, args.model, args.output_dir, data_dir=args.data_dir, train_subset=args.train_subset,
        eval_subset=args.eval_subset, epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
        max_length=args.max_length, seed=args.seed, precision=_precision(args), report_to=args.report_to,
        overwrite=args.overwrite, resume=args.resume,
    )
    print(f"\nBest dev metrics of {args.model} on {result['task']} ({result['train_examples']} training examples), "
          f"saved to {args.output_dir}:\n")
    print(format_metrics_table({"teacher": result["best"]}, result["task"]))
    return 0


def _distill(args: argparse.Namespace) -> int:
    from kdviz.recipes import preset_names
    from kdviz.distill import distill
    from kdviz.report import format_metrics_table

    if args.list_presets:
        print("\n".join(preset_names()))
        return 0
    config = config_from_arguments(args)
    result = distill(config, resume=args.resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, process 0 reports
        return 0
    print(f"\nBest dev metrics of the student ({'+'.join(config.method_terms)}), run folder {config.output_dir}:\n")
    print(format_metrics_table({"student": result["best"]}, result["task"]))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from kdviz.reproduce import reproduce_paper

    teachers = dict(_task_and_path(text) for text in args.teacher or [])
    overrides = {name: getattr(args, name) for name in ("train_subset", "eval_subset", "epochs")
                 if getattr(args, name) is not None}
    if _precision(args) != "auto":
        overrides["precision"] = _precision(args)
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir
    if args.report_to:
        overrides["report_to"] = args.report_to
    table = reproduce_paper(args.paper, args.tasks, runs_dir=args.output_dir, seeds=args.seeds, teachers=teachers,
                            student_init=args.student_init, data_dir=args.data_dir, tolerance=args.tolerance,
                            **overrides)
    print(f"\n{args.paper} paper, reproduced ({args.output_dir or 'runs/reproduce-' + args.paper}):\n")
    print(table)
    return 0


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _cache(args: argparse.Namespace) -> int:
    import time

    from kdviz.cache_store import clear_entries, format_size, list_entries, resolve_cache_dir

    folder = resolve_cache_dir(args.cache_dir)
    if args.action == "clear":
        cleared = clear_entries(folder, args.keys or None)
        print(f"Removed {_entries(len(cleared))} from {folder}: freed {format_size(sum(e.size for e in cleared))}.")
        for entry in list_entries(folder):
            if entry.builders and (not args.keys or any(entry.path.name.startswith(k) for k in args.keys)):
                print(f"  {entry.path.name[:12]} left alone: process {', '.join(map(str, entry.builders))} "
                      f"is writing it now")
        return 0
    entries = list_entries(folder)
    print(f"{folder}: {_entries(len(entries))}, {format_size(sum(e.size for e in entries))} in total")
    for entry in entries:
        about = entry.description
        source = " ".join(f"{name}={about[name]}" for name in ("task", "split", "subset", "max_length")
                          if about.get(name) is not None)
        state = (f"  being written by process {', '.join(map(str, entry.builders))}" if entry.builders else "") + \
            (f"  {format_size(entry.leftovers)} left by a cut-off build" if entry.leftovers else "")
        print(f"  {entry.path.name[:12]}  {entry.path.parent.name:<7}  {format_size(entry.size):>9}  "
              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(entry.modified))}  teacher={about.get('teacher', '?')} "
              f"{source}  parts: {', '.join(entry.parts) or 'none finished'}{state}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from kdviz.export import export_run, push_to_hub

    folder = export_run(args.run_dir, args.output_dir, overwrite=args.overwrite)
    print(f"Exported the student of {args.run_dir} to {folder} (weights, tokenizer, config, model card README.md).")
    if args.push_to_hub:
        print(f"Uploaded to the hub: {push_to_hub(folder, args.push_to_hub, private=args.private)}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from kdviz.predict import write_submission

    for path in write_submission(args.run_dir, split=args.split, data_dir=args.data_dir, output_dir=args.output_dir,
                                 batch_size=args.batch_size):
        print(f"Wrote {path} ({sum(1 for _ in path.open()) - 1} predictions)")
    return 0


def _task_and_path(text: str) -> tuple[str, str]:
    task, separator, path = text.partition("=")
    if not separator or not task or not path:
        raise argparse.ArgumentTypeError(f"expected TASK=TEACHER, got {text!r}")
    return task, path


DATA_DIR_HELP = "folder in the original GLUE layout (default $KDVIZ_DATA_DIR, else the hub)"
CACHE_DIR_HELP = "teacher cache folder (default $KDVIZ_CACHE, else ~/.cache/kdviz)"
def config_from_arguments(args: argparse.Namespace):
    """The run's config: the preset's values, then the config file's, then the options given."""
    from kdviz.config import DistillConfig, merge_config_values, preset, read_config_values

    given = option_values(args)
    if args.bf16 is not None:
        given["precision"] = _precision(args)
    return DistillConfig.from_dict(merge_config_values(preset(args.preset) if args.preset else {},
                                                       read_config_values(args.config) if args.config else {}, given))


def _precision(args: argparse.Namespace) -> str:
    """``--precision``, or the retired ``--bf16 true|false``."""
    if args.precision is not None:
        return args.precision
    from kdviz.precision import precision_from_bf16

    return "auto" if args.bf16 is None else precision_from_bf16(args.bf16)


def _add_precision_arguments(parser: argparse.ArgumentParser, *, with_precision: bool = True) -> None:
    from kdviz.precision import PRECISIONS

    if with_precision:
        parser.add_argument("--precision", choices=PRECISIONS,
                            help="auto (default: bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPUs)")
    add_older_spelling(parser, "--bf16", "--precision bf16 (true) or fp32 (false)", "bf16", type=boolean)
    parser.set_defaults(bf16=None)


def _finetune_options(tune: argparse.ArgumentParser) -> None:
    from kdviz.data import DEFAULT_MAX_LENGTH

    tune.add_argument("--task", required=True, help="GLUE task (kdviz tasks lists them)")
    tune.add_argument("--model", required=True, help="hub id, local folder, or offline-minilm")
    tune.add_argument("--output-dir", help="folder for the model, tokenizer and metrics (required)")
    add_older_spelling(tune, "--output", "--output-dir", "output_dir")
    tune.add_argument("--data-dir", help=DATA_DIR_HELP)
    tune.add_argument("--train-subset", type=int, help="number of training examples (seeded draw)")
    tune.add_argument("--eval-subset", type=int, help="number of dev examples per dev split")
    tune.add_argument("--epochs", type=float, help="default: the paper's teacher recipe for the task")
    tune.add_argument("--learning-rate", type=float, help="default: the paper's teacher recipe")
    add_older_spelling(tune, "--lr", "--learning-rate", "learning_rate", type=float)
    tune.add_argument("--batch-size", type=int, help="default: the paper's teacher recipe")
    tune.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH)
    tune.add_argument("--seed", type=int, default=42)
    tune.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    tune.add_argument("--resume", action="store_true", help="continue a cut-off fine-tuning of the same settings")
    tune.add_argument("--report-to", default="none", help=REPORT_TO_HELP)
    _add_precision_arguments(tune)


def _distill_options(distil: argparse.ArgumentParser) -> None:
    distil.add_argument("--preset", help="METHOD/TASK, e.g. adkd/sst2 (see --list-presets)")
    distil.add_argument("--config", help="YAML or JSON file of DistillConfig fields")
    distil.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    distil.add_argument("--overwrite", action="store_true", help="replace a non-empty run folder")
    distil.add_argument("--list-presets", action="store_true", help="print the presets and stop")
    add_config_arguments(distil)  # --precision among them
    _add_precision_arguments(distil, with_precision=False)


def _reproduce_options(again: argparse.ArgumentParser) -> None:
    again.add_argument("--paper", required=True, choices=("adkd", "alp"))
    again.add_argument("--tasks", nargs="+", help="default: every task the paper reports")
    again.add_argument("--seeds", nargs="+", type=int, default=[42])
    again.add_argument("--output-dir", help="folder of teachers, runs and results (default runs/reproduce-PAPER)")
    add_older_spelling(again, "--runs", "--output-dir", "output_dir")
    again.add_argument("--teacher", nargs="+", metavar="TASK=TEACHER",
                       help="a task's teacher instead of the paper's: fine-tuned folder or model to fine-tune")
    again.add_argument("--student-init", help="the student model instead of the paper's (adkd): hub id or folder")
    again.add_argument("--data-dir", help=DATA_DIR_HELP)
    again.add_argument("--tolerance", type=float, default=1.0, help="points below the paper that still pass")
    again.add_argument("--train-subset", type=int, help="training examples per task (a smoke test; default all)")
    again.add_argument("--eval-subset", type=int, help="dev examples per task (a smoke test; default all)")
    again.add_argument("--epochs", type=float, help="student epochs instead of the paper's (a smoke test)")
    again.add_argument("--cache-dir", help=CACHE_DIR_HELP)
    again.add_argument("--report-to", help=REPORT_TO_HELP)
    _add_precision_arguments(again)


def _predict_options(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("run_dir", metavar="RUN", help="a finished run folder")
    predict.add_argument("--split", default="test", help="test (every test split; MNLI: matched and mismatched) "
                                                         "or one test split's name")
    predict.add_argument("--data-dir", help=DATA_DIR_HELP)
    predict.add_argument("--output-dir", help="where the files go (default RUN/submission)")
    predict.add_argument("--batch-size", type=int, default=64)


def _export_options(export: argparse.ArgumentParser) -> None:
    export.add_argument("run_dir", metavar="RUN", help="a finished run folder (kdviz distill's --output-dir)")
    export.add_argument("--output-dir", required=True, help="the folder to write (a model from_pretrained loads)")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    export.add_argument("--push-to-hub", metavar="REPO", help="also upload it to this hub model repository (user/name)")
    export.add_argument("--private", action="store_true", help="create the hub repository as private")


def _cache_options(cache: argparse.ArgumentParser) -> None:
    actions = cache.add_subparsers(dest="action", required=True)
    for action, help_text in (("list", "list the entries, their sizes and parts"), ("clear", "delete entries")):
        sub = actions.add_parser(action, help=help_text)
        sub.add_argument("--cache-dir", help=CACHE_DIR_HELP)
        sub.set_defaults(run=_cache, keys=[])
    sub.add_argument("keys", nargs="*", help="only the entries whose key starts so (as list shows them); default all")


COMMANDS = {  # name: (help, options, what runs it)
    "tasks": ("list the GLUE tasks", None, _tasks),
    "finetune": ("fine-tune a teacher on a GLUE task, keeping the best dev epoch", _finetune_options, _finetune),
    "distill": ("distil a student from a fine-tuned teacher (preset < config file < options)", _distill_options,
                _distill),
    "reproduce": ("run a paper's own setup (resumably) and compare with its numbers", _reproduce_options, _reproduce),
    "predict": ("write a run's GLUE test-set predictions as submission files", _predict_options, _predict),
    "export": ("write a run's student as a hub-ready folder with a model card", _export_options, _export),
    "cache": ("show or free the teacher cache folder", _cache_options, None),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kdviz`` command (each command's options are added on first use)."""
    parser = argparse.ArgumentParser(prog="kdviz", description="Distil BERT models on GLUE and see what it does.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=LazyParser)
    for name, (help_text, add_options, run) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text, add_options=add_options)
        if run is not None:
            command.set_defaults(run=run)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors that mean bad input: reported in one line, without a traceback."""
    from kdviz.cache_store import CacheFolderError

    return ValueError, FileNotFoundError, FileExistsError, argparse.ArgumentTypeError, CacheFolderError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kdviz`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except _user_errors() as error:
        print(f"kdviz {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        _close_process_group()


def _close_process_group() -> None:
    """Close the process group a run under ``torchrun`` opened (Trainer, through accelerate): a gloo
    group left up at interpreter exit can abort a rank after its results are written ("terminate
    called without an active exception")."""
    distributed = sys.modules.get("torch.distributed")  # never imports torch for a command that did not
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
