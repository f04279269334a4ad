"""The ``kdviz`` command: ``kdviz tasks`` and ``kdviz finetune``."""

from __future__ import annotations

import argparse
import sys

from kdviz.data import DEFAULT_MAX_LENGTH


def _tasks(args: argparse.Namespace) -> int:
    from kdviz.tasks import format_task_table

    print(format_task_table())
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from kdviz.finetune import finetune
    from kdviz.report import format_metrics_table

    result = finetune(
        args.task, args.model, args.output, data_dir=args.data_dir, train_subset=args.train_subset,
        eval_subset=args.eval_subset, epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
        max_length=args.max_length, seed=args.seed, overwrite=args.overwrite,
    )
    print(f"\nBest dev metrics of {args.model} on {result['task']} ({result['train_examples']} training examples), "
          f"saved to {args.output}:\n")
    print(format_metrics_table({"teacher": result["best"]}, result["task"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kdviz`` command."""
    parser = argparse.ArgumentParser(prog="kdviz", description="Distil BERT models on GLUE and see what it does.")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("tasks", help="list the GLUE tasks").set_defaults(run=_tasks)

    tune = commands.add_parser("finetune", help="fine-tune a teacher on a GLUE task, keeping the best dev epoch")
    tune.add_argument("--task", required=True, help="GLUE task (kdviz tasks lists them)")
    tune.add_argument("--model", required=True, help="hub id, local folder, or offline-minilm")
    tune.add_argument("--output", required=True, help="folder for the model, tokenizer and metrics")
    tune.add_argument("--data-dir", help="folder in the original GLUE layout (default $KDVIZ_DATA_DIR, else the hub)")
    tune.add_argument("--train-subset", type=int, help="number of training examples (seeded draw)")
    tune.add_argument("--eval-subset", type=int, help="number of dev examples per dev split")
    tune.add_argument("--epochs", type=float, help="default: the paper's teacher recipe for the task")
    tune.add_argument("--lr", type=float, help="learning rate; default: the paper's teacher recipe")
    tune.add_argument("--batch-size", type=int, help="default: the paper's teacher recipe")
    tune.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH)
    tune.add_argument("--seed", type=int, default=42)
    tune.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    tune.set_defaults(run=_finetune)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kdviz`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"kdviz {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
