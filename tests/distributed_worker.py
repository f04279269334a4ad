"""One process of a ``torchrun`` distillation (tests/test_distill.py): each writes its trained weights
(student and loss terms) at the start and the end of training.

    torchrun --nproc_per_node 2 tests/distributed_worker.py TEACHER STUDENT DATA_DIR RUN_DIR WEIGHTS_DIR [CONFIG]

CONFIG is a JSON object of config fields over the ``alp/sst2`` preset (its ``preset`` item names another).
"""

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import TrainerCallback

from kdviz.config import DistillConfig
from kdviz.distill import distill
from kdviz.recipes import preset


class SaveObjective(TrainerCallback):
    """Each process writes the trained weights (student and loss terms) at the start and at the end of training."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _save(self, model, when: str) -> None:
        model = getattr(model, "module", model)
        state_dict = {name: value.detach().clone().contiguous() for name, value in model.state_dict().items()}
        save_file(state_dict, str(self.folder / f"rank{os.environ['RANK']}-{when}.safetensors"))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._save(model, "begin")

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._save(model, "end")


def main(teacher: str, student: str, data_dir: str, run_dir: str, weights_dir: str, overrides: str = "{}") -> None:
    overrides = json.loads(overrides)
    config = DistillConfig.from_dict({**preset(overrides.pop("preset", "alp/sst2")), "teacher": teacher,
                                      "student_init": student, "data_dir": data_dir, "output_dir": run_dir,
                                      "train_subset": 64, "eval_subset": 16, "batch_size": 8, "epochs": 1,
                                      "probe_size": 0, "agreement_size": 0, "logging_steps": 1, **overrides})
    distill(config, callbacks=[SaveObjective(Path(weights_dir))], load_best_model_at_end=False,
            save_strategy="no", eval_strategy="no")
    if torch.distributed.is_initialized():
        # a gloo group left up at interpreter exit can abort a rank ("terminate called without an
        # active exception", seen once in the minimum-versions job); accelerate's guides end scripts this way
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
