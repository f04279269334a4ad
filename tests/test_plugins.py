"""Loss terms of a user's own: a .py file outside kdviz, named in a config file's plugins, trains a run."""

import json
import sys
import textwrap

import pytest
import yaml

from kdviz.cli import main
from kdviz.config import DistillConfig
from kdviz.runs import load_run

TOY_TERM = textwrap.dedent('''
    """A user's term: the mean squared logit, pulling the student's logits towards zero."""
    from dataclasses import dataclass

    from kdviz.loss_terms import LossTerm, TermOptions, TermOutput, register_term
    from kdviz.typed_fields import option


    @dataclass
    class LogitDecayOptions(TermOptions):
        power: float = option(2.0, "exponent of the logits", above=0)


    @register_term
    class LogitDecay(LossTerm):
        """Mean |logit| ** power."""

        name, options = "logit_decay", LogitDecayOptions

        def __init__(self, power):
            super().__init__()
            self.power = power

        @classmethod
        def from_options(cls, options, student_config, teacher_config):
            return cls(options.power)

        def forward(self, student, teacher, context):
            return TermOutput(student.logits.abs().pow(self.power).mean())
''')


def test_a_term_from_a_file_outside_kdviz_trains_from_a_config_file(tmp_path, tiny_teacher, real_glue_env, registry):
    plugin_folder = tmp_path / "my_project"
    plugin_folder.mkdir()
    (plugin_folder / "my_terms.py").write_text(TOY_TERM)
    config_file = plugin_folder / "run.yaml"
    config_file.write_text(textwrap.dedent(f"""
        teacher: {tiny_teacher}
        output_dir: {tmp_path / "run"}
        plugins: [my_terms.py]            # relative to this file's folder
        terms:
          kd: {{weight: 0.5, temperature: 2}}
          logit_decay: {{weight: 0.25, power: 1.5}}
        train_subset: 48
        eval_subset: 16
        epochs: 1
        batch_size: 16
        logging_steps: 1
        probe_size: 2
        agreement_size: 0
        student_layers: 2
        top_k: 20
        """))
    assert main(["distill", "--config", str(config_file)]) == 0
    run = load_run(tmp_path / "run")
    assert run.config.method_terms == ["ce", "kd", "logit_decay"]
    assert run.config.terms["logit_decay"].power == 1.5
    assert run.config.plugins == [str(plugin_folder / "my_terms.py")]  # kept absolute in the run folder
    records = [json.loads(line) for line in (tmp_path / "run" / "history" / "loss_terms.jsonl").open()]
    assert [record["step"] for record in records] == [0, 1, 2, 3]  # 0: the untrained student
    assert all(record["loss_logit_decay"] > 0 for record in records)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["terms"]["logit_decay"] == {"weight": 0.25, "power": 1.5}


def test_a_plugin_option_is_checked_like_a_built_in_one(tmp_path, registry):
    (tmp_path / "my_terms.py").write_text(TOY_TERM)
    with pytest.raises(ValueError, match=r"terms.logit_decay.power=0.0 is out of range: it must be above 0"):
        DistillConfig(plugins=[str(tmp_path / "my_terms.py")], terms={"logit_decay": {"weight": 1, "power": 0}})


def test_a_missing_plugin_names_the_entry_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"plugins entry '.*nowhere.py' does not exist: give the path of a .py"):
        DistillConfig(plugins=[str(tmp_path / "nowhere.py")])
    with pytest.raises(ModuleNotFoundError, match=r"plugins entry 'no_such_package.terms' is not an importable module"):
        DistillConfig(plugins=["no_such_package.terms"])
    assert not any(name.startswith("kdviz_plugin_nowhere") for name in sys.modules)


def test_two_terms_of_one_name_are_refused(registry):
    from kdviz.loss_terms import LossTerm, register_term

    class Other(LossTerm):
        name = "kd"

    with pytest.raises(ValueError, match=r"Two loss terms are called 'kd' .*give the new one another name"):
        register_term(Other)


def test_two_plugins_registering_one_name_are_refused_even_with_one_class_name(tmp_path, registry):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "terms.py").write_text(TOY_TERM)
    DistillConfig(plugins=[str(tmp_path / "a" / "terms.py")])
    DistillConfig(plugins=[str(tmp_path / "a" / "terms.py")])  # the same file again: imported once
    with pytest.raises(ValueError, match=r"Two loss terms are called 'logit_decay'"):
        DistillConfig(plugins=[str(tmp_path / "b" / "terms.py")])
