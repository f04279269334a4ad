"""Teachers and students: loading, refusals, students built from teacher layers, round trips."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from helpers import make_batch, tiny_bert
from kdviz.attribution import AttributionSettings
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.models import (ModelLoadError, build_student, is_eager, is_finetuned, load_classifier, load_model_config,
                          load_teacher, model_depth, select_layers)


def test_select_layers_strategies():
    assert select_layers(6, 2, "skip") == [2, 5]
    assert select_layers(12, 6, "skip") == [1, 3, 5, 7, 9, 11]
    assert select_layers(12, 4, "first") == [0, 1, 2, 3]
    assert select_layers(12, 4, "last") == [8, 9, 10, 11]
    with pytest.raises(ValueError, match="1 to 6"):
        select_layers(6, 7)
    with pytest.raises(ValueError, match="strategy"):
        select_layers(6, 2, "middle")


def test_student_from_layers_0_and_5_of_the_offline_teacher_holds_exactly_those_weights(offline_teacher_dir):
    teacher, _ = load_classifier(offline_teacher_dir, "sst2")
    student = build_student(teacher, layers=[0, 5])
    assert student.config.num_hidden_layers == 2 and is_eager(student)
    for new, old in enumerate([0, 5]):
        s_layer, t_layer = student.bert.encoder.layer[new].state_dict(), teacher.bert.encoder.layer[old].state_dict()
        assert s_layer.keys() == t_layer.keys()
        assert all(torch.equal(s_layer[k], t_layer[k]) for k in s_layer)
    for name in ("bert.embeddings", "bert.pooler", "classifier"):
        s_part, t_part = student.get_submodule(name).state_dict(), teacher.get_submodule(name).state_dict()
        assert all(torch.equal(s_part[k], t_part[k]) for k in s_part)
    # a copy, not shared storage: training the student leaves the teacher alone
    assert student.bert.encoder.layer[1].output.dense.weight.data_ptr() != \
        teacher.bert.encoder.layer[5].output.dense.weight.data_ptr()


def test_student_strategies_and_range_errors():
    teacher = tiny_bert(layers=6)
    assert build_student(teacher, 3, strategy="skip").config.kdviz_teacher_layers == [1, 3, 5]
    assert build_student(teacher, 2, strategy="last").config.kdviz_teacher_layers == [4, 5]
    with pytest.raises(ValueError, match="out of range.*0 to 5"):
        build_student(teacher, layers=[0, 6])
    with pytest.raises(ValueError, match="either num_layers"):
        build_student(teacher, 2, layers=[0, 1])


def test_student_round_trips_through_save_pretrained(tmp_path):
    student = build_student(tiny_bert(layers=4), layers=[1, 3]).eval()
    student.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    default = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()  # transformers picks SDPA
    assert type(loaded) is type(student) and loaded.config.num_hidden_layers == 2
    ids = torch.randint(1000, 2000, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    with torch.no_grad():
        expected = student(input_ids=ids, attention_mask=mask).logits
        assert torch.equal(expected, loaded(input_ids=ids, attention_mask=mask).logits)
        # another attention kernel rounds differently, nothing more
        torch.testing.assert_close(default(input_ids=ids, attention_mask=mask).logits, expected, rtol=0, atol=1e-6)


def test_model_path_that_does_not_exist(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_classifier(str(tmp_path / "no_model"), "sst2")


def test_teacher_with_another_label_count_is_refused_before_loading(tmp_path):
    tiny_bert(num_labels=3).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="3 label.*sst2 needs 2"):
        load_teacher(tmp_path, "sst2")
    _, config = load_model_config(tmp_path, "mnli")
    assert config.id2label[2] == "contradiction"


def test_teacher_must_be_a_fine_tuned_classifier(offline_teacher_dir):
    with pytest.raises(ModelLoadError, match="kdviz finetune"):
        load_teacher(offline_teacher_dir, "sst2")


def test_teacher_is_frozen_eval_and_fused(tmp_path, offline_teacher_dir):
    from transformers import AutoTokenizer

    tiny_bert().save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(offline_teacher_dir).save_pretrained(tmp_path)
    teacher, tokenizer = load_teacher(tmp_path, "sst2")
    assert teacher.config._attn_implementation == "sdpa" and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert tokenizer.vocab_size == 30522


def test_fine_tuned_or_base_and_depth(tiny_teacher, offline_teacher_dir):
    assert is_finetuned(tiny_teacher, "sst2") and not is_finetuned(offline_teacher_dir, "sst2")
    assert model_depth(tiny_teacher) == 4 and model_depth("offline-minilm") == 6


def test_reorder_labels_makes_output_c_mean_the_tasks_label_c():
    from kdviz.models import reorder_labels

    model = tiny_bert(num_labels=3, layers=1)
    batch = make_batch(pairs=True)
    with torch.no_grad():
        before = model(**batch).logits
        reorder_labels(model, ("contradiction", "entailment", "neutral"), "mnli")  # the old GLUE processors' order
        after = model(**batch).logits
    # the task's order is entailment, neutral, contradiction: trained outputs 1, 2, 0
    torch.testing.assert_close(after, before[:, [1, 2, 0]], rtol=0, atol=0)
    assert model.config.id2label == {0: "entailment", 1: "neutral", 2: "contradiction"}
    with pytest.raises(ValueError, match=r"is not a permutation of mnli's labels"):
        reorder_labels(model, ("entailment", "neutral"), "mnli")


def _load_reports(reference, task="sst2") -> list[str]:
    """The transformers weight-loading reports logged while ``load_classifier`` runs."""
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    report = logging.getLogger("transformers.modeling_utils")
    report.addHandler(handler)
    try:
        load_classifier(reference, task)
    finally:
        report.removeHandler(handler)
    return [r.getMessage() for r in records if "LOAD REPORT" in r.getMessage()]


def test_a_new_head_is_not_reported_but_other_missing_weights_are(tmp_path, offline_teacher_dir):
    from transformers import AutoTokenizer, BertModel

    from helpers import tiny_bert_config

    assert _load_reports(offline_teacher_dir) == []  # an encoder given a new head: expected, and quiet
    encoder = BertModel(tiny_bert_config(layers=2))
    partial = {k: v for k, v in encoder.state_dict().items() if ".layer.1." not in k}
    encoder.save_pretrained(tmp_path, state_dict=partial)
    AutoTokenizer.from_pretrained(offline_teacher_dir).save_pretrained(tmp_path)
    reports = _load_reports(tmp_path)
    assert len(reports) == 1 and "bert.encoder.layer.1.output.dense.weight" in reports[0]


def test_fused_attention_gives_the_eager_outputs_and_attributions(tmp_path, offline_teacher_dir):
    from transformers import AutoTokenizer

    tiny_bert(num_labels=3).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(offline_teacher_dir).save_pretrained(tmp_path)
    fused, _ = load_classifier(tmp_path, "mnli")
    eager, _ = load_classifier(tmp_path, "mnli", attention="eager")
    assert fused.config._attn_implementation == "sdpa" and is_eager(eager)
    ids = torch.randint(5, 100, (4, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    batch = {"input_ids": ids, "attention_mask": mask}
    settings = AttributionSettings(views="classes", steps=3)
    with_fused = frozen_token_scores(fused, batch, None, settings, output_hidden_states=True)
    with_eager = frozen_token_scores(eager, batch, None, settings, output_hidden_states=True)
    torch.testing.assert_close(with_fused.logits, with_eager.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(with_fused.scores, with_eager.scores, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(with_fused.hidden_states[-1], with_eager.hidden_states[-1], atol=1e-5, rtol=1e-4)


def test_a_student_without_the_attribution_loss_trains_the_same_with_fused_attention():
    from kdviz.losses import kd_loss

    teacher = tiny_bert(num_labels=2, layers=4)
    ids = torch.randint(5, 100, (4, 12))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0
    with torch.no_grad():
        teacher_logits = teacher(input_ids=ids, attention_mask=mask).logits
    losses, grads = [], []
    for attention in ("eager", "sdpa"):
        student = build_student(teacher, 2, attention=attention).eval()
        assert student.config._attn_implementation == attention
        loss = kd_loss(student(input_ids=ids, attention_mask=mask).logits, teacher_logits, 2.0)
        loss.backward()
        losses.append(loss.detach())
        grads.append(student.bert.encoder.layer[0].attention.self.query.weight.grad)
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)
