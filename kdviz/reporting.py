"""Where training also logs its metrics: any of transformers' reporting integrations, checked up front.

``report_to`` takes what ``transformers.TrainingArguments`` takes: ``"none"``, ``"all"`` (every
integration installed), one integration's name (``"tensorboard"``, ``"wandb"``, ``"mlflow"``...),
several as a list or comma-separated (``"tensorboard,wandb"``). A name transformers does not know,
or an integration whose package is missing, is refused before any work starts, naming the fix.
"""

from __future__ import annotations

PACKAGES = {"azure_ml": "azureml-core", "comet_ml": "comet-ml", "neptune": "neptune", "clearml": "clearml",
            "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "dvclive": "dvclive",
            "codecarbon": "codecarbon", "dagshub": "dagshub", "flyte": "flytekit", "swanlab": "swanlab",
            "trackio": "trackio", "kubeflow": "kubeflow"}
"""The package to pip-install for an integration, where its name is not the package's."""


def known_integrations() -> list[str]:
    """The integration names the installed transformers accepts in ``report_to``."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    return sorted(INTEGRATION_TO_CALLBACK)


def report_to_names(report_to: str | list[str]) -> list[str]:
    """The integration names ``report_to`` stands for: ``[]`` for none, ``["all"]`` for all.

    Args:
        report_to: ``"none"``, ``"all"``, a name, several names (a list, or comma-separated text).

    Raises:
        ValueError: a name the installed transformers does not know, or ``none``/``all`` mixed with names.
    """
    names = [name.strip() for name in (report_to.split(",") if isinstance(report_to, str) else report_to)]
    names = [name for name in names if name]
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return names
    known = known_integrations()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"report_to={report_to!r}: {unknown} not known to transformers; choose from {known}, "
                         f"'all' (every one installed) or 'none'.")
    return names


def check_report_to(report_to: str | list[str]) -> str | list[str]:
    """``report_to`` checked against what is installed, as ``TrainingArguments(report_to=...)`` takes it.

    Returns:
        ``"none"``, ``"all"`` or the list of integration names.

    Raises:
        ValueError: an unknown name, or an integration whose package is not installed (naming it).
    """
    from transformers.integrations import get_available_reporting_integrations

    names = report_to_names(report_to)
    if not names:
        return "none"
    if names == ["all"]:
        return "all"
    missing = [name for name in names if name not in get_available_reporting_integrations()]
    if missing:
        packages = " ".join(PACKAGES.get(name, name) for name in missing)
        raise ValueError(f"report_to={report_to!r} needs {', '.join(missing)}, which is not installed: "
                         f"pip install {packages} (or report_to='none').")
    return names


def log_into_folder(trainer, logs_dir) -> None:
    """Point TensorBoard at ``logs_dir``; by default it writes under the checkpoints folder, which a
    finished training drops."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(logs_dir)
