"""Share a distilled student as hub users expect: a folder ``from_pretrained`` loads, with a model card.

:func:`export_run` writes the best student of a finished run (weights in safetensors, its tokenizer,
a config that names the task's labels) and a ``README.md`` model card in the Hugging Face hub's
format: YAML metadata (pipeline, tags, data set, the dev score as a ``model-index`` result) and a
body with the teacher, the method and its hyperparameters, the dev score, the rationale agreement
with the teacher and the faithfulness of the rationales. :func:`push_to_hub` uploads that folder
with ``huggingface_hub``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

import kdviz
from kdviz.report import format_faithfulness_table, format_metrics_table
from kdviz.runs import Run, check_output_dir, load_run
from kdviz.tasks import get_task

CARD_CITATION = """@inproceedings{wu-etal-2023-adkd,
  title = {{AD-KD}: Attribution-Driven Knowledge Distillation for Language Model Compression},
  author = {Wu, Siyue and Chen, Hongzhan and Quan, Xiaojun and Wang, Qifan and Wang, Rui},
  booktitle = {Proceedings of the 61st Annual Meeting of the Association for Computational Linguistics},
  year = {2023}
}
@inproceedings{passban-etal-2021-alpkd,
  title = {{ALP-KD}: Attention-Based Layer Projection for Knowledge Distillation},
  author = {Passban, Peyman and Wu, Yimeng and Rezagholizadeh, Mehdi and Liu, Qun},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  volume = {35}, number = {15}, pages = {13657--13665},
  year = {2021}
}"""


def _finished(run_dir: str | os.PathLike) -> Run:
    """The run, refused unless it finished (metrics written, student saved)."""
    run = load_run(run_dir)
    if not run.metrics or not (run.student_dir / "config.json").is_file():
        raise FileNotFoundError(f"{str(run.path)!r} is not a finished run (no metrics.json or no student/): "
                                f"finish it first (kdviz distill ... --resume).")
    return run


def _is_hub_id(reference: str) -> bool:
    return reference.count("/") == 1 and not Path(reference).expanduser().exists()


def teacher_name(reference: str) -> str:
    """How a card names the teacher: a hub id as it is, a local folder by its name (no machine's paths)."""
    return reference if _is_hub_id(reference) else f"{Path(reference).name} (a local folder)"


def _percent(value: float) -> float:
    return round(100 * value, 2)


def card_metadata(run: Run) -> dict:
    """The model card's YAML metadata: pipeline, tags, data set and the dev score as a ``model-index``."""
    task = get_task(run.config.task)
    split = task.validation_splits[0]
    best = run.metrics["best"]
    metrics = [{"type": name, "name": name.replace("_", " ").capitalize(), "value": _percent(best[name])}
               for name in task.metrics if name in best]
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["kdviz", "knowledge-distillation", "glue", *run.config.method_terms],
        "datasets": ["nyu-mll/glue"],
        "metrics": list(task.metrics),
        "model-index": [{"name": Path(run.path).name, "results": [{
            "task": {"type": "text-classification", "name": "Text Classification"},
            "dataset": {"name": f"GLUE {task.folder}", "type": "nyu-mll/glue", "config": task.name, "split": split},
            "metrics": metrics}]}],
    }
    if run.teacher and _is_hub_id(run.teacher.reference):
        metadata["base_model"] = run.teacher.reference
    return metadata


def model_card(run: Run) -> str:
    """A hub model card (``README.md``) for a finished run's student.

    Args:
        run: the run (:func:`~kdviz.runs.load_run`).

    Returns:
        The card's text: YAML metadata between ``---`` lines, then Markdown.
    """
    task, config, metrics = get_task(run.config.task), run.config, run.metrics
    teacher = teacher_name(run.teacher.reference if run.teacher else config.teacher)
    student_layers = len(config.student_layer_indices or []) or config.student_layers
    sections = [
        f"# {Path(run.path).name}: a {student_layers}-layer student distilled on GLUE {task.folder}",
        f"Distilled with [kdviz](https://github.com/kdviz/kdviz) {kdviz.__version__} from the teacher "
        f"`{teacher}` ({run.teacher.layers if run.teacher else '?'} layers), with the loss terms "
        f"{', '.join(f'`{term}`' for term in config.method_terms)} on {metrics.get('train_examples', '?')} "
        f"training examples; the best of its epochs on the dev set is kept (epoch {metrics.get('best_epoch')}).",
        "## How to use\n\n```python\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
        "model = AutoModelForSequenceClassification.from_pretrained(\"PATH_OR_REPO\")\n"
        "tokenizer = AutoTokenizer.from_pretrained(\"PATH_OR_REPO\")\n```\n\n"
        f"Labels: {', '.join(f'{i} = {name}' for i, name in enumerate(task.label_names)) or 'a regression score'}.",
        f"## Dev score ({sum(metrics.get('dev_examples', {}).values())} examples)\n\n"
        + format_metrics_table({"student": metrics["best"]}, task).rstrip(),
    ]
    if run.agreement:
        last = run.agreement[-1]
        sections.append(
            f"## Rationale agreement with the teacher\n\nCosine, Spearman correlation and top-3 token overlap of "
            f"the student's and the teacher's Integrated-Gradients token scores on {last.get('examples')} dev "
            f"examples, at the last logged step ({last.get('step')}; higher is closer). This version of kdviz "
            f"records no baseline beside them (a flat student, the untrained student).\n\n"
            + "| cosine | Spearman | top-3 overlap |\n|---|---|---|\n"
            + f"| {last['cosine']:.4f} | {last['spearman']:.4f} | {last['top_k_overlap']:.4f} |")
    if metrics.get("faithfulness"):
        fraction = next(iter(metrics["faithfulness"].values())).get("fraction", 0.2)
        sections.append(
            f"## Faithfulness of the rationales (ERASER)\n\nDeleting the top {fraction:.0%} of tokens by "
            f"attribution: comprehensiveness is the drop in the predicted class's probability (higher: the "
            f"model uses those tokens), sufficiency the drop when only they are kept (lower: they suffice). A "
            f"negative value means the prediction grew more confident. No random-rationale baseline is recorded "
            f"by this version of kdviz.\n\n" + format_faithfulness_table(metrics["faithfulness"]).rstrip())
    settings = {name: value for name, value in config.to_dict().items()
                if name not in ("output_dir", "data_dir", "cache_dir", "report_to", "keep_checkpoints")}
    settings["teacher"] = teacher
    sections += [
        "## Training configuration (kdviz `DistillConfig`)\n\n```yaml\n"
        + yaml.safe_dump(settings, sort_keys=False).rstrip() + "\n```",
        f"Trained in {metrics.get('precision', '?')} on {metrics.get('device', '?')}.",
        "## Citation\n\nThe methods kdviz implements:\n\n```bibtex\n" + CARD_CITATION + "\n```",
    ]
    front = yaml.safe_dump(card_metadata(run), sort_keys=False).rstrip()
    return f"---\n{front}\n---\n\n" + "\n\n".join(sections) + "\n"


def export_run(run_dir: str | os.PathLike, output_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a hub-ready folder of a finished run's student.

    Args:
        run_dir: the run folder (``kdviz distill``'s ``--output-dir``).
        output_dir: the folder to write: ``model.safetensors``, ``config.json`` (with the task's
            ``id2label``), the tokenizer files and ``README.md`` (the model card).
        overwrite: replace a non-empty ``output_dir``.

    Returns:
        ``output_dir`` as a path.

    Raises:
        FileNotFoundError: not a finished run. FileExistsError: ``output_dir`` is not empty and
            ``overwrite`` is off. ValueError: ``output_dir`` is the run folder, inside it or around it.
    """
    run = _finished(run_dir)
    output = check_output_dir(output_dir, overwrite)
    source, target = run.path.resolve(), output.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise ValueError(f"Export to a folder apart from the run: {str(output)!r} overlaps {str(run.path)!r}.")
    student, tokenizer = run.load_student()
    card = model_card(run)
    if output.exists():  # only once everything to write is in hand
        shutil.rmtree(output)
    student.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    (output / "README.md").write_text(card)
    return output


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload an exported folder to a model repository on the Hugging Face hub (created if missing).

    Args:
        folder: a folder written by :func:`export_run`.
        repo_id: ``"user/name"``.
        private: create the repository as private.
        token: a hub token (default: the one ``huggingface-cli login`` saved, or ``$HF_TOKEN``).

    Returns:
        The URL of the commit.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "README.md").is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not an exported student (no README.md or config.json): "
                                f"run kdviz export first.")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                               commit_message=f"Upload a student distilled with kdviz {kdviz.__version__}")
    return str(getattr(commit, "commit_url", commit))
