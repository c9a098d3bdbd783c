"""bertedu's BERT equals transformers' BERT: on the real MiniLM checkpoint and on random
checkpoints of other shapes, for the bare encoder and every head, loading and saving both ways."""
import json

import pytest
import torch
import transformers

import bertedu
from bertedu import BertConfig, BertModel
from bertedu.checkpoints import read_state_dict

TOL = dict(atol=1e-5, rtol=0)

# bertedu class -> transformers class with the same parameter names
HEADS = {
    "BertModel": (bertedu.BertModel, transformers.BertModel),
    "BertForPreTraining": (bertedu.BertForPreTraining, transformers.BertForPreTraining),
    "BertForMaskedLM": (bertedu.BertForMaskedLM, transformers.BertForMaskedLM),
    "BertForSequenceClassification": (bertedu.BertForSequenceClassification,
                                      transformers.BertForSequenceClassification),
    "BertForTokenClassification": (bertedu.BertForTokenClassification,
                                   transformers.BertForTokenClassification),
    "BertForQuestionAnswering": (bertedu.BertForQuestionAnswering,
                                 transformers.BertForQuestionAnswering),
}

# shapes unlike MiniLM's: odd widths, 3 segment types, short position tables
SHAPES = [
    dict(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
         intermediate_size=37, type_vocab_size=3, max_position_embeddings=40, num_labels=3),
    dict(vocab_size=250, hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
         intermediate_size=96, type_vocab_size=2, max_position_embeddings=64, num_labels=1),
]


def random_batch(config: dict, batch_size=3, seq_len=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config["vocab_size"], (batch_size, seq_len), generator=g)
    token_type_ids = torch.randint(0, config["type_vocab_size"], (batch_size, seq_len), generator=g)
    attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    attention_mask[1, 7:] = 0  # padding in the batch
    attention_mask[2, 4:] = 0
    input_ids[attention_mask == 0] = 0
    return dict(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)


def outputs_of(output) -> dict[str, torch.Tensor]:
    """The tensors a model returns, by name, for bertedu and transformers outputs alike."""
    names = ["last_hidden_state", "pooler_output", "logits", "prediction_logits",
             "seq_relationship_logits", "start_logits", "end_logits"]
    found = {}
    for name in names:
        value = getattr(output, name, None)
        if isinstance(value, torch.Tensor):
            found[name] = value
    found.pop("prediction_logits", None) if "logits" in found else None
    if "prediction_logits" in found:  # transformers' BertForPreTraining names its MLM logits so
        found["logits"] = found.pop("prediction_logits")
    return found


def assert_same_outputs(ours, theirs, attention_mask):
    ours, theirs = outputs_of(ours), outputs_of(theirs)
    assert ours.keys() == theirs.keys()
    keep = attention_mask.bool()
    for name in ours:
        a, b = ours[name], theirs[name]
        if a.dim() >= 2 and a.shape[:2] == keep.shape:  # per-token outputs: compare real tokens
            a, b = a[keep], b[keep]
        torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"{name}: {m}")


# ---------------------------------------------------------------------------------------
# The real checkpoint
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm_pair(minilm_dir):
    ours = BertModel.from_pretrained(minilm_dir)
    theirs = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    batch = tokenizer(["The bank raised its interest rates.",
                       "We sat on the river bank and watched the boats go by, slowly.",
                       "Short."],
                      ["A second segment.", "Another one here.", "x"],
                      padding=True, return_tensors="pt")
    return ours, theirs, dict(batch)


def test_minilm_matches_transformers_with_padding(minilm_pair):
    ours, theirs, batch = minilm_pair
    assert batch["attention_mask"].min() == 0, "the batch must contain padding"
    with torch.no_grad():
        a, b = ours(**batch), theirs(**batch)
    keep = batch["attention_mask"].bool()
    assert (a.last_hidden_state[keep] - b.last_hidden_state[keep]).abs().max() <= 1e-5
    assert (a.pooler_output - b.pooler_output).abs().max() <= 1e-5
    assert a.last_hidden_state.shape == (3, batch["input_ids"].size(1), 384)


def test_minilm_hidden_states_and_attentions_match(minilm_pair):
    ours, theirs, batch = minilm_pair
    with torch.no_grad():
        a = ours(**batch, output_hidden_states=True, output_attentions=True)
        b = theirs(**batch, output_hidden_states=True, output_attentions=True)
    assert len(a.hidden_states) == 7 and len(a.attentions) == 6
    keep = batch["attention_mask"].bool()
    for mine, ref in zip(a.hidden_states, b.hidden_states):
        torch.testing.assert_close(mine[keep], ref[keep], **TOL)
    for mine, ref in zip(a.attentions, b.attentions):
        torch.testing.assert_close(mine, ref, **TOL)
    # attention rows are distributions that give padding exactly zero weight
    torch.testing.assert_close(a.attentions[0].sum(-1), torch.ones_like(a.attentions[0].sum(-1)))
    assert a.attentions[0][~keep[:, None, None, :].expand_as(a.attentions[0])].abs().max() == 0


def test_fused_and_plain_attention_agree(minilm_pair):
    ours, _, batch = minilm_pair
    with torch.no_grad():
        fused = ours.set_attention_implementation(True)(**batch).last_hidden_state
        plain = ours.set_attention_implementation(False)(**batch).last_hidden_state
    ours.set_attention_implementation(True)
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(fused[keep], plain[keep], **TOL)


def test_cpu_training_on_short_inputs_takes_the_plain_path_with_the_fused_gradients(minilm_pair, monkeypatch):
    """With gradients on a CPU and T <= 128 the plain kernel runs (it is faster there); its
    gradients equal those of PyTorch's fused kernel, and longer inputs still take the fused one."""
    ours, _, batch = minilm_pair
    ours.eval()  # no dropout: the two kernels see the same inputs
    import bertedu.model as model_module

    calls = []
    plain = model_module.scaled_dot_product_attention
    monkeypatch.setattr(model_module, "scaled_dot_product_attention", lambda *a: calls.append(1) or plain(*a))

    def gradients(use_sdpa: bool, inputs: dict) -> torch.Tensor:
        ours.zero_grad()
        ours.set_attention_implementation(use_sdpa)
        ours(**inputs).last_hidden_state.sum().backward()
        return ours.encoder.layer[0].attention.self.query.weight.grad.clone()

    calls.clear()
    short = gradients(True, batch)
    assert len(calls) == ours.config.num_hidden_layers  # the plain kernel, in every block
    calls.clear()
    long_batch = {k: v.repeat(1, 130 // v.shape[1] + 1)[:, :130] for k, v in batch.items()}
    fused_long = gradients(True, long_batch)
    assert calls == []  # 130 tokens: the fused kernel
    plain_long = gradients(False, long_batch)
    ours.set_attention_implementation(True)
    ours.zero_grad()
    assert short.abs().sum() > 0
    torch.testing.assert_close(fused_long, plain_long, rtol=1e-4, atol=1e-4)


def test_padding_does_not_change_the_real_tokens(minilm_pair):
    ours, _, batch = minilm_pair
    n = int(batch["attention_mask"][2].sum())
    alone = {k: v[2:3, :n] for k, v in batch.items()}
    with torch.no_grad():
        padded = ours(**batch).last_hidden_state[2, :n]
        unpadded = ours(**alone).last_hidden_state[0]
    torch.testing.assert_close(padded, unpadded, **TOL)


# ---------------------------------------------------------------------------------------
# Random checkpoints of other shapes, every head, both directions
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=["1-layer", "3-layer"])
@pytest.mark.parametrize("head", list(HEADS))
def test_head_roundtrips_with_transformers(head, shape, tmp_path):
    ours_cls, theirs_cls = HEADS[head]
    if head == "BertForQuestionAnswering":  # transformers sizes qa_outputs by num_labels: 2 only
        shape = {**shape, "num_labels": 2}
    torch.manual_seed(0)
    theirs = theirs_cls(transformers.BertConfig(**shape)).eval()
    with torch.no_grad():  # non-trivial values everywhere, including biases and LayerNorms
        for parameter in theirs.parameters():
            parameter.normal_(0, 0.2)
    batch = random_batch(shape)

    # transformers -> bertedu
    theirs.save_pretrained(tmp_path / "hf")
    ours = ours_cls.from_pretrained(tmp_path / "hf")
    assert ours.loading_report == {"missing": [], "unexpected": []}
    with torch.no_grad():
        assert_same_outputs(ours(**batch), theirs(**batch), batch["attention_mask"])

    # bertedu -> transformers
    ours.save_pretrained(tmp_path / "ours")
    again = theirs_cls.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        assert_same_outputs(ours(**batch), again(**batch), batch["attention_mask"])


def test_losses_match_transformers(tmp_path):
    shape = SHAPES[0]
    torch.manual_seed(0)
    theirs = transformers.BertForPreTraining(transformers.BertConfig(**shape)).eval()
    theirs.save_pretrained(tmp_path)
    ours = bertedu.BertForPreTraining.from_pretrained(tmp_path)
    batch = random_batch(shape)
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, 2], labels[1, 5], labels[2, 1] = 7, 11, 13
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad():
        a = ours(**batch, labels=labels, next_sentence_label=nsp).loss
        b = theirs(**batch, labels=labels, next_sentence_label=nsp).loss
    torch.testing.assert_close(a, b, **TOL)


def test_new_head_is_initialised_and_reported(minilm_dir):
    with pytest.warns(UserWarning, match="newly initialised"):
        model = bertedu.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=3)
    assert model.loading_report["missing"] == ["classifier.bias", "classifier.weight"]
    assert model.classifier.weight.shape == (3, 384)
    # the encoder is the checkpoint's, not a fresh one
    state = read_state_dict(minilm_dir)
    torch.testing.assert_close(model.bert.encoder.layer[5].output.dense.weight,
                               state["encoder.layer.5.output.dense.weight"])


def test_mlm_decoder_is_tied_to_word_embeddings():
    model = bertedu.BertForMaskedLM(BertConfig.tiny(vocab_size=50))
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


# ---------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------
def count_parameters(config: BertConfig) -> int:
    with torch.device("meta"):  # no memory is allocated for the 335M weights
        return sum(p.numel() for p in BertModel(config).parameters())


def test_preset_parameter_counts():
    assert count_parameters(BertConfig.base()) == 109_482_240
    assert count_parameters(BertConfig.large()) == 335_141_888
    assert count_parameters(BertConfig.mini()) == 22_713_216  # all-MiniLM-L6-v2


def test_config_json_roundtrip(tmp_path, minilm_dir):
    config = BertConfig.from_json_file(minilm_dir / "config.json")
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (6, 384, 12)
    config.to_json_file(tmp_path / "config.json")
    assert BertConfig.from_json_file(tmp_path / "config.json") == config
    reference = transformers.BertConfig.from_json_file(tmp_path / "config.json")
    assert reference.intermediate_size == 1536 and reference.layer_norm_eps == 1e-12


# ---------------------------------------------------------------------------------------
# Older checkpoints and bad input
# ---------------------------------------------------------------------------------------
def test_legacy_names_load(tmp_path):
    shape = SHAPES[0]
    torch.manual_seed(0)
    theirs = transformers.BertForPreTraining(transformers.BertConfig(**shape)).eval()
    state = {}
    for name, tensor in theirs.state_dict().items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[name] = tensor.clone()
    state["bert.embeddings.position_ids"] = torch.arange(shape["max_position_embeddings"])[None]
    state["cls.predictions.decoder.bias"] = state.pop("cls.predictions.bias")  # only the decoder copy
    torch.save(state, tmp_path / "pytorch_model.bin")
    theirs.config.to_json_file(tmp_path / "config.json")
    ours = bertedu.BertForPreTraining.from_pretrained(tmp_path)
    assert ours.loading_report == {"missing": [], "unexpected": []}
    batch = random_batch(shape)
    with torch.no_grad():
        assert_same_outputs(ours(**batch), theirs(**batch), batch["attention_mask"])


class NotATensor:
    """Stands for any pickled object: unpickling one could run arbitrary code."""


def test_bin_with_pickled_objects_is_refused(tmp_path):
    BertConfig.tiny(vocab_size=50).to_json_file(tmp_path / "config.json")
    torch.save({"weights": NotATensor()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pickled objects"):
        BertModel.from_pretrained(tmp_path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="config"):
        BertModel.from_pretrained(tmp_path)
    BertConfig.tiny(vocab_size=50).to_json_file(tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        BertModel.from_pretrained(tmp_path)


def test_truncated_weights_file_is_refused(tmp_path):
    BertModel(BertConfig.tiny(vocab_size=50)).save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        BertModel.from_pretrained(tmp_path)


def test_config_weights_mismatch_names_the_tensor(tmp_path, minilm_dir):
    wider = json.loads((minilm_dir / "config.json").read_text())
    wider["intermediate_size"] = 1024
    (tmp_path / "config.json").write_text(json.dumps(wider))
    (tmp_path / "model.safetensors").symlink_to(minilm_dir / "model.safetensors")
    with pytest.raises(ValueError, match=r"encoder.layer.0.intermediate.dense.(weight|bias) has shape \(1536"):
        BertModel.from_pretrained(tmp_path)

    fewer = json.loads((minilm_dir / "config.json").read_text())
    fewer["num_hidden_layers"] = 4
    (tmp_path / "config.json").write_text(json.dumps(fewer))
    with pytest.raises(ValueError, match="encoder.layer.4"):
        BertModel.from_pretrained(tmp_path)

    more = json.loads((minilm_dir / "config.json").read_text())
    more["num_hidden_layers"] = 8
    (tmp_path / "config.json").write_text(json.dumps(more))
    with pytest.raises(ValueError, match="lacks .* encoder tensors"):
        BertModel.from_pretrained(tmp_path)


def test_save_does_not_destroy_earlier_checkpoint_on_failure(tmp_path, monkeypatch):
    model = BertModel(BertConfig.tiny(vocab_size=50))
    model.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_bad_inputs_raise_clear_errors():
    model = BertModel(BertConfig.tiny(vocab_size=50, max_position_embeddings=16)).eval()
    with pytest.raises(ValueError, match="batch_size, seq_len"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="max_position_embeddings=16"):
        model(torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 50\)"):
        model(torch.tensor([[1, 50]]))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))
    with pytest.raises(TypeError, match="integer ids"):
        model(torch.ones(2, 5))
    with pytest.raises(ValueError, match="multiple of"):
        BertConfig(hidden_size=100, num_attention_heads=12)


# ---------------------------------------------------------------------------------------
# Inputs that used to be silently wrong (issue 16)
# ---------------------------------------------------------------------------------------
def _tiny_model():
    torch.manual_seed(0)
    return BertModel(BertConfig.tiny(vocab_size=50)).eval()


def test_any_nonzero_mask_value_means_attend_as_in_transformers():
    model = _tiny_model()
    ids = torch.randint(5, 50, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        ones = model(ids, attention_mask=mask).last_hidden_state
        twos = model(ids, attention_mask=2 * mask).last_hidden_state
        floats = model(ids, attention_mask=0.5 * mask.float()).last_hidden_state
    torch.testing.assert_close(ones, twos)
    torch.testing.assert_close(ones, floats)


def test_bad_mask_and_segment_inputs_are_refused_with_the_argument_named():
    model = _tiny_model()
    ids = torch.randint(5, 50, (1, 4))
    with pytest.raises(ValueError, match="attention_mask contains NaN"):
        model(ids, attention_mask=torch.tensor([[1.0, float("nan"), 1.0, 1.0]]))
    with pytest.raises(TypeError, match="token_type_ids must be a tensor"):
        model(ids, token_type_ids=[[0, 0, 1, 1]])
    with pytest.raises(TypeError, match="attention_mask must be a tensor"):
        model(ids, attention_mask=[[1, 1, 1, 1]])
    with pytest.raises(TypeError, match="integer segment ids"):
        model(ids, token_type_ids=torch.zeros(1, 4))


def test_regression_labels_of_shape_b_1_give_the_same_loss_as_b():
    from bertedu import BertForSequenceClassification
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig.tiny(vocab_size=50, num_labels=1)).eval()
    ids = torch.randint(5, 50, (4, 6))
    targets = torch.tensor([0.5, 1.5, 2.5, 3.5])
    with torch.no_grad():
        flat = model(ids, labels=targets).loss
        column = model(ids, labels=targets[:, None]).loss
        by_hand = ((model(ids).logits[:, 0] - targets) ** 2).mean()
    torch.testing.assert_close(flat, column)
    torch.testing.assert_close(flat, by_hand)
    with pytest.raises(ValueError, match=r"regression labels must have shape \[4\] or \[4, 1\]"):
        model(ids, labels=targets[None, :])


@pytest.mark.parametrize("field, value, message", [
    ("hidden_size", "128", "hidden_size must be a positive integer"),
    ("num_attention_heads", 0, "num_attention_heads must be a positive integer"),
    ("layer_norm_eps", "1e-12", "layer_norm_eps must be a number"),
    ("layer_norm_eps", -1e-12, "layer_norm_eps must be positive"),
    ("hidden_dropout_prob", 1.5, r"hidden_dropout_prob must be in \[0, 1\)"),
    ("num_hidden_layers", True, "num_hidden_layers must be a positive integer"),
])
def test_a_bad_config_file_names_the_file_and_the_field(tmp_path, field, value, message):
    data = BertConfig.tiny(vocab_size=50).to_dict()
    data[field] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as caught:
        BertConfig.from_json_file(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("content", ["[1, 2]", "null"])
def test_a_config_that_is_not_an_object_is_refused(tmp_path, content):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="must be a JSON object"):
        BertConfig.from_json_file(path)


def test_empty_batches_and_empty_sequences_are_refused_before_any_nan():
    model = _tiny_model()
    for shape in [(0, 5), (2, 0), (0, 0)]:
        with pytest.raises(ValueError, match=r"at least one sequence, and every sequence at least one token"):
            model(torch.zeros(shape, dtype=torch.long))
    from bertedu import BertForSequenceClassification
    classifier = BertForSequenceClassification(BertConfig.tiny(vocab_size=50, num_labels=2))
    with pytest.raises(ValueError, match=r"shape \[0, 5\]"):  # it used to return a NaN loss
        classifier(torch.zeros(0, 5, dtype=torch.long), labels=torch.zeros(0, dtype=torch.long))


def _labelled_heads():
    from bertedu import (BertForMaskedLM, BertForPreTraining, BertForQuestionAnswering,
                         BertForSequenceClassification, BertForTokenClassification)
    torch.manual_seed(0)
    config = BertConfig.tiny(vocab_size=50, num_labels=3)
    return {name: cls(config).eval() for name, cls in [
        ("sequence", BertForSequenceClassification), ("token", BertForTokenClassification),
        ("mlm", BertForMaskedLM), ("pretraining", BertForPreTraining), ("qa", BertForQuestionAnswering)]}


IDS = torch.randint(5, 50, (2, 6), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("head, labels, error, message", [
    # a [T, B] label tensor has as many elements as [B, T]: a reshape would pair the wrong tokens
    ("token", {"labels": torch.zeros(6, 2, dtype=torch.long)}, ValueError, r"labels must have shape \[2, 6\]"),
    ("mlm", {"labels": torch.zeros(6, 2, dtype=torch.long)}, ValueError, r"labels must have shape \[2, 6\]"),
    ("pretraining", {"labels": torch.zeros(2, 5, dtype=torch.long)}, ValueError, r"labels must have shape \[2, 6\]"),
    ("pretraining", {"next_sentence_label": torch.zeros(3, dtype=torch.long)}, ValueError,
     r"next_sentence_label must have shape \[2\]"),
    ("sequence", {"labels": torch.zeros(2, 1, dtype=torch.long)}, ValueError, r"labels must have shape \[2\]"),
    ("sequence", {"labels": torch.tensor([0.0, 1.0])}, TypeError, "integer class ids"),
    ("sequence", {"labels": [0, 1]}, TypeError, "labels must be a tensor"),
    ("qa", {"start_positions": torch.tensor([1, 2])}, ValueError, "both start_positions and end_positions"),
    ("qa", {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([[1, 2]])}, ValueError,
     r"end_positions must have shape \[2\]"),
])
def test_bad_labels_are_refused_with_the_argument_named(head, labels, error, message):
    model = _labelled_heads()[head]
    with pytest.raises(error, match=message):
        model(IDS, **labels)


def test_column_shaped_nsp_labels_give_the_same_loss_as_flat_ones():
    model = _labelled_heads()["pretraining"]
    nsp = torch.tensor([0, 1])
    with torch.no_grad():
        torch.testing.assert_close(model(IDS, next_sentence_label=nsp).loss,
                                   model(IDS, next_sentence_label=nsp[:, None]).loss)
