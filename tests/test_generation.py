"""Generation with a masked language model (chapter 15): the mask-predict schedule, which
slots are re-masked, left-to-right filling, determinism, parity with transformers, bad input."""
import pytest
import torch

from bertedu import BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from bertedu.generation import GenerationStep, left_to_right, mask_predict, mask_schedule, pseudo_log_likelihood
from bertedu.tokenization import BertTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4


def word_tokenizer(n_words: int = 60) -> BertTokenizer:
    """The specials, then the words w0 .. w{n-1}."""
    return BertTokenizer(vocab=SPECIALS + [f"w{i}" for i in range(n_words)])


def tiny_config(vocab_size: int, max_len: int = 40) -> BertConfig:
    return BertConfig.tiny(vocab_size=vocab_size, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                           max_position_embeddings=max_len, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config(tokenizer.vocab_size)).eval()
    with torch.no_grad():  # sharper, more varied distributions than the small initial weights give
        model.cls.predictions.bias.normal_(0, 2.0)
        model.bert.embeddings.word_embeddings.weight.normal_(0, 0.5)
    return model


def greedy_at(model, tokenizer, input_ids, positions):
    """The most probable non-special id at `positions` of `input_ids` [T], and its probability."""
    with torch.no_grad():
        logits = model(input_ids[None]).logits[0, positions]
    logits[:, tokenizer.all_special_ids] = float("-inf")
    probs = logits.softmax(-1)
    return probs.argmax(-1), probs.max(-1).values


# ---------------------------------------------------------------------------------------
# The schedule


def test_mask_schedule_is_the_papers_linear_decay():
    assert mask_schedule(10, 4) == [10, 7, 5, 2]  # N (T - t) / T, rounded down
    assert mask_schedule(10, 10) == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert mask_schedule(3, 10) == [3, 2, 2, 2, 1, 1, 1]  # passes that would mask nothing are left out
    assert mask_schedule(5, 1) == [5]
    assert mask_schedule(1, 3) == [1]


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "4", None])
def test_mask_schedule_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="length must be a whole number >= 1"):
        mask_schedule(bad, 4)
    with pytest.raises(ValueError, match="iterations must be a whole number >= 1"):
        mask_schedule(4, bad)


# ---------------------------------------------------------------------------------------
# mask-predict


def test_mask_predict_masks_the_scheduled_counts_and_keeps_the_fixed_text(model, tokenizer):
    steps = mask_predict(model, tokenizer, 12, prompt="w1 w2", suffix="w3", iterations=5)
    schedule = mask_schedule(12, 5)
    assert [step.n_masked for step in steps] == schedule == [12, 9, 7, 4, 2]
    assert [step.iteration for step in steps] == list(range(5))
    first = steps[0]
    assert first.input_ids.tolist() == [2, 5 + 1, 5 + 2] + [4] * 12 + [5 + 3, 3]  # [CLS] w1 w2 [MASK]*12 w3 [SEP]
    assert first.slots.tolist() == [False] * 3 + [True] * 12 + [False] * 2
    for step in steps:
        assert not (step.masked & ~step.slots).any(), "only generated slots are masked"
        assert (step.input_ids[step.masked] == tokenizer.mask_token_id).all()
        assert (step.input_ids[~step.masked] == step.output_ids[~step.masked]).all(), "unmasked ids pass through"
        assert not torch.isin(step.output_ids[step.slots], torch.tensor(tokenizer.all_special_ids)).any()
        assert step.output_ids[~step.slots].tolist() == first.input_ids[~first.slots].tolist()
        assert (step.probabilities[~step.slots] == 1).all()
    assert (steps[0].probabilities[steps[0].slots] > 0).all()


def test_mask_predict_remasks_the_least_confident_and_keeps_the_most_confident(model, tokenizer):
    steps = mask_predict(model, tokenizer, 10, iterations=6)
    for before, step in zip(steps, steps[1:]):
        p = before.probabilities[step.slots]
        remasked = step.masked[step.slots]
        assert (step.input_ids[step.masked] == tokenizer.mask_token_id).all()
        assert p[remasked].max() <= p[~remasked].min(), "a kept token is less confident than a re-masked one"
        # the kept tokens and their probabilities do not change; the re-masked ones get new probabilities
        kept = step.slots & ~step.masked
        assert torch.equal(step.output_ids[kept], before.output_ids[kept])
        assert torch.equal(step.probabilities[kept], before.probabilities[kept])


def test_mask_predict_fills_each_masked_slot_with_the_models_best_guess(model, tokenizer):
    steps = mask_predict(model, tokenizer, 8, prompt="w7", iterations=4)
    for step in steps:
        positions = step.masked.nonzero().squeeze(1)
        best, probability = greedy_at(model, tokenizer, step.input_ids, positions)
        assert torch.equal(step.output_ids[positions], best)
        torch.testing.assert_close(step.probabilities[positions], probability)


def test_mask_predict_equals_a_plain_loop(model, tokenizer):
    N, T = 9, 4
    ids = torch.tensor([2] + [4] * N + [3])
    slots = torch.arange(1, N + 1)
    probs = torch.zeros(N)
    for t in range(T):
        n = N if t == 0 else N * (T - t) // T
        chosen = slots if t == 0 else slots[torch.sort(probs, stable=True).indices[:n]]
        ids[chosen] = 4
        best, p = greedy_at(model, tokenizer, ids, chosen)
        ids[chosen] = best
        probs[chosen - 1] = p
    assert mask_predict(model, tokenizer, N, iterations=T)[-1].output_ids.tolist() == ids.tolist()


def test_mask_predict_is_deterministic_and_sampling_follows_the_generator(model, tokenizer):
    greedy = [s.output_ids.tolist() for s in mask_predict(model, tokenizer, 10, iterations=5)]
    assert greedy == [s.output_ids.tolist() for s in mask_predict(model, tokenizer, 10, iterations=5)]

    def sample(seed):
        steps = mask_predict(model, tokenizer, 10, iterations=5, temperature=1.0,
                             generator=torch.Generator().manual_seed(seed))
        return [s.output_ids.tolist() for s in steps]

    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
    assert sample(0)[-1] != greedy[-1]


def test_mask_predict_restores_the_models_mode():
    tokenizer = word_tokenizer()
    model = BertForPreTraining(tiny_config(tokenizer.vocab_size)).train()  # works with both MLM heads
    steps = mask_predict(model, tokenizer, 4, iterations=2)
    assert model.training and len(steps) == 2
    assert torch.is_grad_enabled()


def test_step_text_shows_masks(model, tokenizer):
    steps = mask_predict(model, tokenizer, 3, prompt="w1", iterations=3)
    assert steps[0].text(tokenizer, "input") == "_ _ _"
    assert steps[1].text(tokenizer, "input").count("_") == 2
    assert steps[-1].text(tokenizer) == tokenizer.decode(steps[-1].output_ids[steps[-1].slots].tolist())
    with pytest.raises(ValueError, match="'output' or 'input'"):
        steps[0].text(tokenizer, "outputs")


def test_mask_predict_equals_transformers(model, tokenizer, tmp_path):
    transformers = pytest.importorskip("transformers")
    model.save_pretrained(tmp_path)
    hf_model = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    ours = mask_predict(model, tokenizer, 10, prompt="w4 w5", iterations=5)
    theirs = mask_predict(hf_model, tokenizer, 10, prompt="w4 w5", iterations=5)
    assert [s.output_ids.tolist() for s in ours] == [s.output_ids.tolist() for s in theirs]
    assert [s.masked.tolist() for s in ours] == [s.masked.tolist() for s in theirs]


# ---------------------------------------------------------------------------------------
# Left to right


def test_left_to_right_appends_one_mask_at_a_time(model, tokenizer):
    steps = left_to_right(model, tokenizer, 5, prompt="w1 w2")
    assert len(steps) == 5
    for t, step in enumerate(steps):
        assert len(step.input_ids) == 3 + t + 1 + 1  # [CLS] w1 w2, t generated, [MASK], [SEP]
        assert step.input_ids[-2:].tolist() == [tokenizer.mask_token_id, tokenizer.sep_token_id]
        assert step.masked.nonzero().squeeze(1).tolist() == [3 + t]
        best, p = greedy_at(model, tokenizer, step.input_ids, step.masked.nonzero().squeeze(1))
        assert step.output_ids[3 + t] == best[0]
        torch.testing.assert_close(step.probabilities[3 + t], p[0])
        assert step.slots.sum() == t + 1
        if t:  # the text so far is the previous output, never revised
            assert step.input_ids[:3 + t].tolist() == steps[t - 1].output_ids[:3 + t].tolist()
    assert steps[-1].output_ids[1:3].tolist() == [6, 7]


def test_left_to_right_with_future_masks_fills_the_leftmost_mask(model, tokenizer):
    steps = left_to_right(model, tokenizer, 4, suffix="w9", future_masks=True)
    for t, step in enumerate(steps):
        assert len(step.input_ids) == 1 + 4 + 1 + 1
        assert step.masked.nonzero().squeeze(1).tolist() == [1 + t]
        assert (step.input_ids[1 + t:5] == tokenizer.mask_token_id).all(), "later slots are still [MASK]"
        assert (step.probabilities[2 + t:5] == 0).all(), "a slot not generated yet has probability 0"
        best, _ = greedy_at(model, tokenizer, step.input_ids, torch.tensor([1 + t]))
        assert step.output_ids[1 + t] == best[0]
    assert steps[-1].output_ids[-2] == 5 + 9


def test_left_to_right_differs_from_one_pass_fill_and_is_deterministic(model, tokenizer):
    a = left_to_right(model, tokenizer, 6, future_masks=True)[-1].output_ids
    assert torch.equal(a, left_to_right(model, tokenizer, 6, future_masks=True)[-1].output_ids)
    one_pass = mask_predict(model, tokenizer, 6, iterations=1)[-1].output_ids
    assert a[1] == one_pass[1]  # the first slot sees the same input in both
    assert isinstance(left_to_right(model, tokenizer, 2)[0], GenerationStep)


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("generate", [mask_predict, left_to_right])
def test_generators_refuse_bad_input(model, tokenizer, generate):
    with pytest.raises(ValueError, match="length must be a whole number >= 1"):
        generate(model, tokenizer, 0)
    with pytest.raises(ValueError, match="length must be a whole number >= 1"):
        generate(model, tokenizer, 2.0)
    with pytest.raises(ValueError, match="no MLM head"):
        generate(BertModel(model.config), tokenizer, 4)
    with pytest.raises(ValueError, match="no MLM head"):
        generate(BertForSequenceClassification(model.config), tokenizer, 4)
    with pytest.raises(ValueError, match="tokenizer has 45 WordPieces but the model's vocabulary has 65"):
        generate(model, word_tokenizer(40), 4)
    with pytest.raises(ValueError, match="more than the model's 40 positions"):
        generate(model, tokenizer, 39)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        generate(model, tokenizer, 4, temperature=-1.0)
    with pytest.raises(ValueError, match="prompt must be a string"):
        generate(model, tokenizer, 4, prompt=["w1"])


def test_mask_predict_refuses_zero_iterations(model, tokenizer):
    with pytest.raises(ValueError, match="iterations must be a whole number >= 1"):
        mask_predict(model, tokenizer, 4, iterations=0)


# ---------------------------------------------------------------------------------------
# Pseudo-log-likelihood


def test_pseudo_log_likelihood_masks_each_piece_in_turn(model, tokenizer):
    scores = pseudo_log_likelihood(model, tokenizer, "w3 w4 w5", prompt="w1")
    ids = [2, 6, 8, 9, 10, 3]  # [CLS] w1 w3 w4 w5 [SEP]
    expected = []
    for position in (2, 3, 4):
        row = torch.tensor(ids)
        row[position] = tokenizer.mask_token_id
        with torch.no_grad():
            expected.append(model(row[None]).logits[0, position].log_softmax(-1)[ids[position]])
    torch.testing.assert_close(scores, torch.stack(expected))
    torch.testing.assert_close(pseudo_log_likelihood(model, tokenizer, "w3 w4 w5", prompt="w1", batch_size=2), scores)
    assert (scores < 0).all()


def test_pseudo_log_likelihood_refuses_bad_input(model, tokenizer):
    with pytest.raises(ValueError, match="at least one WordPiece"):
        pseudo_log_likelihood(model, tokenizer, "   ")
    with pytest.raises(ValueError, match="no MLM head"):
        pseudo_log_likelihood(BertModel(model.config), tokenizer, "w1")
    with pytest.raises(ValueError, match="more than the model's 40 positions"):
        pseudo_log_likelihood(model, tokenizer, " ".join(["w1"] * 40))


def test_top_k_sampling_draws_only_from_the_k_most_probable(model, tokenizer):
    steps = mask_predict(model, tokenizer, 8, iterations=1, temperature=1.0, top_k=2,
                         generator=torch.Generator().manual_seed(0))
    step = steps[0]
    with torch.no_grad():
        logits = model(step.input_ids[None]).logits[0, step.masked]
    logits[:, tokenizer.all_special_ids] = float("-inf")
    top2 = logits.topk(2).indices
    assert (top2 == step.output_ids[step.masked][:, None]).any(-1).all()
    with pytest.raises(ValueError, match="top_k must be a whole number >= 1"):
        mask_predict(model, tokenizer, 4, temperature=1.0, top_k=0)
