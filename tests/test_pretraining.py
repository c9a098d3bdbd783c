"""Pretraining data (NSP pairs, MLM masking, static and dynamic masks), the pretraining loss,
evaluation, the command line `python -m bertedu.run_pretraining`, and further pretraining
(the masked LM alone on single sentences, static, dynamic or selective masks)."""
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertedu import BertConfig, BertForMaskedLM, BertForPreTraining, pooling
from bertedu.data import load_wikitext2
from bertedu.heads import IGNORE_INDEX
from bertedu.pretraining import (IS_NEXT, NOT_NEXT, MaskedLMDataset, NspExample, PretrainingDataset,
                                 PretrainingRecipe, baselines, clean_wikitext, collate_pretraining,
                                 create_nsp_examples, encode_pair, evaluate_pretraining, label_association,
                                 mask_tokens, masked_lm_accuracy, masked_lm_batch_loss, pretraining_loss,
                                 split_sentences, token_importance, tokenize_documents, truncate_pair,
                                 wikitext_documents)
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, derive_seed, set_seed, train
from tiny_vocab_bert import TEXTS, pretrained, small_tokenizer

REPO = Path(__file__).resolve().parents[1]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4


def word_tokenizer(n_words: int = 200) -> BertTokenizer:
    """A tokenizer whose vocabulary is the specials then the words w0 .. w{n-1}."""
    return BertTokenizer(vocab=SPECIALS + [f"w{i}" for i in range(n_words)])


def tiny_model(vocab_size: int, max_len: int = 32, dropout: float = 0.0) -> BertForPreTraining:
    config = BertConfig.tiny(vocab_size=vocab_size, hidden_size=32, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=max_len,
                             hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForPreTraining(config)


def labelled_documents(n_docs=12, seed=0):
    """Documents whose token ids say where they come from: every id is unique, and
    `where[id] = (document, sentence, position in the document)`."""
    rng = random.Random(seed)
    documents, where, next_id = [], {}, 1000
    for d in range(n_docs):
        document, position = [], 0
        for s in range(rng.randint(1, 14)):
            sentence = []
            for _ in range(rng.randint(1, 15)):
                where[next_id] = (d, s, position)
                sentence.append(next_id)
                next_id += 1
                position += 1
            document.append(sentence)
        documents.append(document)
    return documents, where


@pytest.fixture(scope="module")
def wikitext_tokens(data_dir, minilm_dir):
    """WikiText-2 valid (about 215,000 WordPieces) in MiniLM's uncased vocabulary."""
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    documents = tokenize_documents(wikitext_documents(load_wikitext2("valid")), tokenizer)
    return tokenizer, documents


# ---------------------------------------------------------------------------------------
# Documents and sentences
# ---------------------------------------------------------------------------------------
def test_split_sentences_after_end_punctuation():
    assert split_sentences("It is red . Is it ? Yes ! no end") == ["It is red .", "Is it ?", "Yes !", "no end"]
    assert split_sentences(" a 0 @.@ 7 b . ") == ["a 0 @.@ 7 b ."]  # a decimal point is no end
    assert split_sentences("   ") == []


def test_clean_wikitext_joins_marks_and_keeps_unk_whole():
    text = "the state @-@ of @-@ the @-@ art , 1 @,@ 000 and 0 @.@ 7 <unk> ."
    assert clean_wikitext(text) == "the state-of-the-art , 1,000 and 0.7 [UNK] ."
    tokenizer = word_tokenizer()
    assert tokenizer.tokenize(clean_wikitext("w1 <unk> w2")) == ["w1", "[UNK]", "w2"]


def test_wikitext_documents_are_articles_of_sentences():
    articles = [{"title": "A", "paragraphs": ["One . Two 0 @.@ 5 ?", "Three ."]},
                {"title": "Empty", "paragraphs": []},
                {"title": "B", "paragraphs": ["<unk> four !"]}]
    assert wikitext_documents(articles) == [["One .", "Two 0.5 ?", "Three ."], ["[UNK] four !"]]


def test_tokenize_documents_drops_empty_sentences_and_documents():
    tokenizer = word_tokenizer()
    documents = [["w1 w2", "", "w3"], [" "], ["w4"]]
    assert tokenize_documents(documents, tokenizer) == [[[6, 7], [8]], [[9]]]
    with pytest.raises(TypeError, match="list of documents"):
        tokenize_documents("w1 w2", tokenizer)


# ---------------------------------------------------------------------------------------
# NSP pairs
# ---------------------------------------------------------------------------------------
def test_encode_pair_adds_cls_and_seps_and_segments():
    input_ids, token_type_ids = encode_pair([7, 8], [9], cls_token_id=2, sep_token_id=3)
    assert input_ids == [2, 7, 8, 3, 9, 3]
    assert token_type_ids == [0, 0, 0, 0, 1, 1]


def test_truncate_pair_trims_the_longer_side():
    rng = random.Random(0)
    a, b = list(range(10)), list(range(100, 103))
    truncate_pair(a, b, 8, rng)
    assert len(a) == 5 and b == [100, 101, 102]  # only the longer side lost tokens
    assert a == list(range(a[0], a[0] + 5))  # still a contiguous run: cut at the ends only
    a, b = list(range(6)), list(range(100, 106))
    truncate_pair(a, b, 8, rng)
    assert len(a) == len(b) == 4


@pytest.mark.parametrize("short_seq_prob", [0.0, 0.1, 1.0])
def test_nsp_pairs_come_from_where_their_label_says(short_seq_prob):
    documents, where = labelled_documents(n_docs=30)
    max_seq_length = 40
    examples = create_nsp_examples(documents, max_seq_length, short_seq_prob, seed=1)
    assert len(examples) > 30
    assert {e.next_sentence_label for e in examples} == {IS_NEXT, NOT_NEXT}
    for e in examples:
        assert e.tokens_a and e.tokens_b
        assert len(e.tokens_a) + len(e.tokens_b) <= max_seq_length - 3
        doc_a = {where[t][0] for t in e.tokens_a}
        doc_b = {where[t][0] for t in e.tokens_b}
        assert doc_a == {e.document_a} and doc_b == {e.document_b}
        for tokens in (e.tokens_a, e.tokens_b):  # each side is one contiguous run of its document
            positions = [where[t][2] for t in tokens]
            assert positions == list(range(positions[0], positions[0] + len(positions)))
        if e.next_sentence_label == NOT_NEXT:  # B never comes from A's document
            assert e.document_b != e.document_a
        else:  # B follows A in the same document
            assert e.document_b == e.document_a
            assert where[e.tokens_b[0]][2] > where[e.tokens_a[-1]][2]


def test_document_indices_refer_to_the_documents_given():
    documents, where = labelled_documents(n_docs=20)
    with_empty = [[]] + documents[:3] + [[[]]] + documents[3:]  # empty documents at 0 and 4
    new_index = lambda d: d + 1 if d < 3 else d + 2
    examples = create_nsp_examples(with_empty, 40, seed=1)
    for e in examples:
        assert e.document_a == new_index(where[e.tokens_a[0]][0])
        assert e.document_b == new_index(where[e.tokens_b[0]][0])
        assert {e.document_a, e.document_b}.isdisjoint({0, 4})


def test_short_seq_prob_makes_shorter_pairs():
    documents, _ = labelled_documents(n_docs=30)
    long = create_nsp_examples(documents, 40, short_seq_prob=0.0, seed=0)
    short = create_nsp_examples(documents, 40, short_seq_prob=1.0, seed=0)
    mean = lambda xs: sum(len(e.tokens_a) + len(e.tokens_b) for e in xs) / len(xs)
    assert mean(short) < 0.8 * mean(long)


def test_create_nsp_examples_is_seeded():
    documents, _ = labelled_documents()
    assert create_nsp_examples(documents, seed=3) == create_nsp_examples(documents, seed=3)
    assert create_nsp_examples(documents, seed=3) != create_nsp_examples(documents, seed=4)


def test_create_nsp_examples_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        create_nsp_examples([[[5, 6], [7]]])
    with pytest.raises(ValueError, match="max_seq_length"):
        create_nsp_examples([[[5]], [[6]]], max_seq_length=4)
    with pytest.raises(ValueError, match="short_seq_prob"):
        create_nsp_examples([[[5]], [[6]]], short_seq_prob=1.5)


def test_nsp_labels_are_balanced_on_wikitext(wikitext_tokens):
    _, documents = wikitext_tokens
    labels = []
    for seed in range(5):  # five passes over the corpus, like Google's dupe_factor
        labels += [e.next_sentence_label for e in create_nsp_examples(documents, 128, seed=seed)]
    assert len(labels) > 10_000
    assert abs(sum(labels) / len(labels) - 0.5) <= 0.02


# ---------------------------------------------------------------------------------------
# MLM masking
# ---------------------------------------------------------------------------------------
def padded_wikitext_batch(wikitext_tokens):
    tokenizer, documents = wikitext_tokens
    examples = create_nsp_examples(documents, 128, seed=0)
    rows = [encode_pair(e.tokens_a, e.tokens_b, tokenizer.cls_token_id, tokenizer.sep_token_id)[0]
            for e in examples]
    T = max(len(r) for r in rows)
    input_ids = torch.tensor([r + [tokenizer.pad_token_id] * (T - len(r)) for r in rows])
    return tokenizer, input_ids


def test_mask_tokens_proportions_on_wikitext(wikitext_tokens):
    tokenizer, input_ids = padded_wikitext_batch(wikitext_tokens)
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids + [tokenizer.pad_token_id]))
    assert (input_ids == tokenizer.pad_token_id).sum() > 10_000  # there is padding to avoid
    eligible = ~special
    assert eligible.sum() >= 100_000

    inputs, labels = mask_tokens(input_ids, tokenizer, generator=torch.Generator().manual_seed(0))
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any()  # special tokens and padding are never chosen
    assert torch.equal(inputs[special], input_ids[special])  # nor changed
    assert torch.equal(labels[chosen], input_ids[chosen])  # labels are the original ids
    assert torch.equal(inputs[~chosen], input_ids[~chosen])  # unchosen tokens stay

    assert abs(chosen.sum() / eligible.sum() - 0.15) <= 0.01
    n = chosen.sum()
    masked = (inputs == tokenizer.mask_token_id) & chosen
    kept = (inputs == input_ids) & chosen
    replaced = chosen & ~masked & ~kept
    assert abs(masked.sum() / n - 0.8) <= 0.02
    assert abs(kept.sum() / n - 0.1) <= 0.02
    assert abs(replaced.sum() / n - 0.1) <= 0.02
    assert not torch.isin(inputs[replaced], torch.tensor(tokenizer.all_special_ids)).any()
    assert len(inputs[replaced].unique()) > 1000  # random tokens spread over the vocabulary


def test_mask_tokens_chooses_round_p_n_per_row_and_at_least_one():
    tokenizer = word_tokenizer()
    input_ids = torch.tensor([[2] + [10] * 40 + [3] + [0] * 8,   # 40 eligible -> 6 chosen
                              [2, 11, 12, 3] + [0] * 46,        # 2 eligible -> at least 1
                              [2, 3, 4, 1] + [0] * 46])         # only specials -> none
    for seed in range(5):
        _, labels = mask_tokens(input_ids, tokenizer, generator=torch.Generator().manual_seed(seed))
        assert (labels != IGNORE_INDEX).sum(dim=1).tolist() == [6, 1, 0]


def test_mask_tokens_is_deterministic_under_a_seed():
    tokenizer = word_tokenizer()
    input_ids = torch.randint(5, tokenizer.vocab_size, (4, 50), generator=torch.Generator().manual_seed(0))
    first = mask_tokens(input_ids, tokenizer, generator=torch.Generator().manual_seed(7))
    again = mask_tokens(input_ids, tokenizer, generator=torch.Generator().manual_seed(7))
    other = mask_tokens(input_ids, tokenizer, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_mask_tokens_refuses_bad_input():
    tokenizer = word_tokenizer()
    with pytest.raises(ValueError, match=r"input_ids\[None\]"):
        mask_tokens(torch.tensor([5, 6, 7]), tokenizer)
    with pytest.raises(TypeError, match="integer ids"):
        mask_tokens(torch.ones(2, 3), tokenizer)
    with pytest.raises(ValueError, match="probability"):
        mask_tokens(torch.tensor([[5, 6]]), tokenizer, probability=0.0)
    with pytest.raises(TypeError, match="tokenizer"):
        mask_tokens(torch.tensor([[5, 6]]), tokenizer="not a tokenizer")


# ---------------------------------------------------------------------------------------
# Dataset, batches, static and dynamic masking
# ---------------------------------------------------------------------------------------
def small_dataset(masking, seed=0, n_docs=12):
    tokenizer = word_tokenizer()
    rng = random.Random(seed)
    documents = [[[rng.randrange(5, tokenizer.vocab_size) for _ in range(rng.randint(2, 10))]
                  for _ in range(rng.randint(2, 12))] for _ in range(n_docs)]
    examples = create_nsp_examples(documents, 32, seed=seed)
    return tokenizer, examples, PretrainingDataset(examples, tokenizer, masking, seed=seed)


def test_dataset_items_hold_the_encoded_pair_and_its_labels():
    tokenizer, examples, dataset = small_dataset("dynamic")
    assert len(dataset) == len(examples)
    for i in (0, 5):
        item, e = dataset[i], examples[i]
        original, types = encode_pair(e.tokens_a, e.tokens_b, 2, 3)
        chosen = item["labels"] != IGNORE_INDEX
        assert item["token_type_ids"].tolist() == types
        assert item["labels"][chosen].tolist() == [original[j] for j in chosen.nonzero().flatten().tolist()]
        assert item["input_ids"][~chosen].tolist() == [t for t, c in zip(original, chosen) if not c]
        assert item["next_sentence_label"].item() == e.next_sentence_label


def test_static_masks_never_change_and_dynamic_masks_change_every_epoch():
    _, _, static = small_dataset("static")
    _, _, dynamic = small_dataset("dynamic")
    masks = lambda ds: [ds[i]["labels"] for i in range(len(ds))]
    static_0, dynamic_0 = masks(static), masks(dynamic)
    assert all(torch.equal(a, b) for a, b in zip(masks(dynamic), dynamic_0))  # same epoch: same masks
    static.set_epoch(1)
    dynamic.set_epoch(1)
    assert all(torch.equal(a, b) for a, b in zip(masks(static), static_0))
    changed = sum(not torch.equal(a, b) for a, b in zip(masks(dynamic), dynamic_0))
    assert changed >= 0.8 * len(dynamic)
    # the mask of (epoch, i) does not depend on what was drawn before
    dynamic.set_epoch(0)
    assert torch.equal(dynamic[7]["labels"], dynamic_0[7])


def test_dataset_refuses_bad_settings():
    tokenizer, examples, _ = small_dataset("static")
    with pytest.raises(ValueError, match="masking"):
        PretrainingDataset(examples, tokenizer, masking="sometimes")
    with pytest.raises(ValueError, match="no examples"):
        PretrainingDataset([], tokenizer)


def test_collate_pads_with_ignored_labels_and_zero_attention():
    items = [{"input_ids": torch.tensor([2, 7, 3, 8, 3]), "token_type_ids": torch.tensor([0, 0, 0, 1, 1]),
              "labels": torch.tensor([-100, 7, -100, -100, -100]), "next_sentence_label": torch.tensor(1)},
             {"input_ids": torch.tensor([2, 4, 3]), "token_type_ids": torch.tensor([0, 0, 0]),
              "labels": torch.tensor([-100, 9, -100]), "next_sentence_label": torch.tensor(0)}]
    batch = collate_pretraining(items, pad_token_id=0)
    assert batch["input_ids"].tolist() == [[2, 7, 3, 8, 3], [2, 4, 3, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 7, -100, -100, -100], [-100, 9, -100, -100, -100]]
    assert batch["next_sentence_label"].tolist() == [1, 0]


# ---------------------------------------------------------------------------------------
# The loss counts the chosen positions only
# ---------------------------------------------------------------------------------------
def test_mlm_loss_counts_only_chosen_positions():
    tokenizer, _, dataset = small_dataset("static")
    batch = dataset.collate([dataset[i] for i in range(8)])
    assert (batch["attention_mask"] == 0).any()  # the batch has padding
    chosen = batch["labels"] != IGNORE_INDEX
    assert not chosen[batch["attention_mask"] == 0].any()  # padding carries no label
    real_words = (batch["attention_mask"] == 1) & (batch["input_ids"] > 4)  # ids 0..4 are special
    assert chosen.sum() < 0.25 * real_words.sum()  # only the chosen ~15% carry a label
    torch.manual_seed(0)
    model = tiny_model(tokenizer.vocab_size).eval()
    out = model(**batch)

    # by hand: the mean over the chosen positions, one at a time
    terms = [F.cross_entropy(out.logits[b, t], batch["labels"][b, t])
             for b, t in (batch["labels"] != IGNORE_INDEX).nonzero().tolist()]
    mlm = torch.stack(terms).mean()
    nsp = F.cross_entropy(out.seq_relationship_logits, batch["next_sentence_label"])
    torch.testing.assert_close(out.loss, mlm + nsp, rtol=0, atol=1e-6)
    torch.testing.assert_close(pretraining_loss(model, batch), out.loss, rtol=0, atol=1e-6)

    # d2l's bug, averaging over every real (or every) position, gives another number
    real = batch["attention_mask"].bool()
    every_real = F.cross_entropy(out.logits[real], batch["input_ids"][real])
    assert abs(every_real.item() - mlm.item()) > 0.01

    # changing the logits of unchosen and padded positions leaves the loss alone
    from bertedu.heads import masked_lm_loss
    noisy = out.logits.clone()
    noisy[~chosen] += 5 * torch.randn_like(noisy[~chosen])
    torch.testing.assert_close(masked_lm_loss(noisy, batch["labels"]), mlm, rtol=0, atol=1e-6)


def test_evaluate_pretraining_matches_the_full_forward():
    tokenizer, _, dataset = small_dataset("static")
    torch.manual_seed(1)
    model = tiny_model(tokenizer.vocab_size)
    metrics = evaluate_pretraining(model, dataset, batch_size=16)
    batch = dataset.collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        out = model.eval()(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    chosen = batch["labels"] != IGNORE_INDEX
    logits, labels = out.logits[chosen], batch["labels"][chosen]
    assert metrics["mlm_accuracy"] == pytest.approx((logits.argmax(-1) == labels).float().mean().item(), abs=1e-9)
    assert metrics["mlm_loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), abs=1e-5)
    masked = batch["input_ids"][chosen] == tokenizer.mask_token_id  # the 80% that show [MASK]
    assert 0 < masked.sum() < chosen.sum()
    assert metrics["mlm_masked_accuracy"] == pytest.approx(
        (logits.argmax(-1) == labels)[masked].float().mean().item(), abs=1e-9)
    nsp = out.seq_relationship_logits
    assert metrics["nsp_accuracy"] == pytest.approx(
        (nsp.argmax(-1) == batch["next_sentence_label"]).float().mean().item(), abs=1e-9)
    assert metrics["nsp_loss"] == pytest.approx(F.cross_entropy(nsp, batch["next_sentence_label"]).item(), abs=1e-5)


def test_baselines_predict_the_most_frequent_token_and_label():
    tokenizer = word_tokenizer()
    train_examples = [NspExample([5, 5, 6], [5], 1, 0, 1), NspExample([6, 7], [5, 2, 2, 2, 2, 2], 1, 1, 0),
                      NspExample([8], [9], 0, 2, 2)]
    eval_examples = [NspExample([5, 6, 7, 8, 9, 5, 6, 7, 8, 9], [5, 6, 7, 8, 9], 0, 0, 0),
                     NspExample([5] * 7, [6] * 3, 1, 1, 2)]
    eval_dataset = PretrainingDataset(eval_examples, tokenizer, "static", mlm_probability=1.0)
    result = baselines(train_examples, eval_dataset, tokenizer)
    assert result["mlm_unigram_token"] == 5  # 4 times in training; [CLS] (id 2, 5 times) is special
    assert result["mlm_unigram_accuracy"] == pytest.approx(10 / 25)  # every position chosen
    inputs = torch.cat([eval_dataset[i]["input_ids"] for i in range(2)])
    labels = torch.cat([eval_dataset[i]["labels"] for i in range(2)])
    masked = (inputs == tokenizer.mask_token_id) & (labels != IGNORE_INDEX)
    assert 0 < masked.sum() < 25
    assert result["mlm_masked_unigram_accuracy"] == pytest.approx((labels[masked] == 5).float().mean().item())
    assert result["nsp_majority_accuracy"] == pytest.approx(0.5)


def test_a_few_steps_reduce_the_pretraining_loss():
    # words follow a Zipf law, so even the word frequencies alone cut the MLM loss
    tokenizer = word_tokenizer(60)
    rng = random.Random(0)
    ids = list(range(5, tokenizer.vocab_size))
    weights = [1 / (rank + 1) ** 1.5 for rank in range(len(ids))]
    documents = [[rng.choices(ids, weights, k=rng.randint(4, 12)) for _ in range(rng.randint(2, 6))]
                 for _ in range(40)]
    examples = create_nsp_examples(documents, 32, seed=0)
    dataset = PretrainingDataset(examples, tokenizer, "dynamic", seed=0)
    held_out = PretrainingDataset(examples[:64], tokenizer, "static", seed=99)
    set_seed(0)
    model = tiny_model(tokenizer.vocab_size)
    before = evaluate_pretraining(model, held_out)
    history = train(model, dataset, TrainingConfig(max_steps=25, batch_size=16, learning_rate=3e-3,
                                                   warmup_steps=3, progress_bar=False),
                    collate_fn=dataset.collate, loss_fn=pretraining_loss)
    after = evaluate_pretraining(model, held_out)
    assert sum(history.losses[-5:]) / 5 < sum(history.losses[:5]) / 5 - 0.5
    assert after["mlm_loss"] < before["mlm_loss"] - 0.5
    assert after["mlm_accuracy"] > before["mlm_accuracy"] + 0.1


def test_training_follows_the_same_curve_as_transformers():
    """No defect in the model or the loss: the same batches and the same AdamW updates through
    `transformers.BertForPreTraining` give the same losses, step after step (fp32)."""
    import transformers
    tokenizer = word_tokenizer(60)
    rng = random.Random(0)
    ids = list(range(5, tokenizer.vocab_size))
    weights = [1 / (rank + 1) ** 1.5 for rank in range(len(ids))]  # Zipf: something to learn
    documents = [[rng.choices(ids, weights, k=rng.randint(3, 10)) for _ in range(rng.randint(2, 6))]
                 for _ in range(30)]
    dataset = PretrainingDataset(create_nsp_examples(documents, 32, seed=0), tokenizer, "dynamic", seed=0)
    set_seed(0)
    ours = tiny_model(tokenizer.vocab_size)
    theirs = transformers.BertForPreTraining(transformers.BertConfig(**{
        k: v for k, v in ours.config.to_dict().items() if k not in ("id2label", "architectures")}))
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    # transformers ties decoder.bias to cls.predictions.bias, and may keep a position_ids buffer
    assert not unexpected and set(missing) <= {"cls.predictions.decoder.bias", "bert.embeddings.position_ids"}, missing
    config = TrainingConfig(max_steps=20, batch_size=16, learning_rate=2e-3, warmup_steps=4,
                            mixed_precision=False, progress_bar=False)
    history = train(ours, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss)

    from bertedu.training import batch_indices, lr_at, make_optimizer  # the same batches and updates, by hand
    optimizer = make_optimizer(theirs, config)
    theirs.train()
    losses = []
    for step in range(config.max_steps):
        indices, epoch = batch_indices(step, len(dataset), config.batch_size, config.seed)
        dataset.set_epoch(epoch)
        batch = dataset.collate([dataset[i] for i in indices])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.learning_rate, config.warmup_steps, config.max_steps)
        loss = theirs(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert history.losses == pytest.approx(losses, abs=1e-4)
    assert losses[-1] < losses[0] - 0.5  # and the curve falls


def test_prepare_pretraining_data_makes_dupe_factor_passes():
    import dataclasses

    from bertedu.pretraining import prepare_pretraining_data

    tokenizer = word_tokenizer(40)
    rng = random.Random(0)
    documents = [[" ".join(f"w{rng.randrange(40)}" for _ in range(rng.randint(3, 9))) for _ in range(6)]
                 for _ in range(8)]
    recipe = dataclasses.replace(PretrainingRecipe(), max_seq_length=24, dupe_factor=3, eval_examples=10)
    data = prepare_pretraining_data(documents, documents[:4], tokenizer, recipe)
    one_pass = create_nsp_examples(tokenize_documents(documents, tokenizer), 24, recipe.short_seq_prob,
                                   seed=derive_seed(recipe.seed, 0))
    assert data["train_examples"][:len(one_pass)] == one_pass
    assert data["train_examples"][len(one_pass):2 * len(one_pass)] != one_pass  # a different cut
    assert len(data["train_examples"]) > 2.5 * len(one_pass)
    assert len(data["train_dataset"]) == len(data["train_examples"])
    assert len(data["eval_dataset"]) == 10 and data["eval_dataset"].masking == "static"


def test_recipe_builds_its_configs():
    recipe = PretrainingRecipe()
    config = recipe.model_config(vocab_size=1234)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (1234, recipe.hidden_size,
                                                                                recipe.num_hidden_layers)
    assert config.max_position_embeddings >= recipe.max_seq_length
    training = recipe.training_config(eval_every=50)
    assert (training.max_steps, training.batch_size, training.eval_every) == (recipe.max_steps, recipe.batch_size, 50)
    assert training.warmup_steps == round(recipe.warmup_fraction * recipe.max_steps)


# ---------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------
def write_corpus(path: Path, n_docs: int, seed: int) -> Path:
    """Google's format: one sentence per line, a blank line between documents."""
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "sun", "rose", "early",
             "bright", "quiet", "lobster", "sea", "blue", "claws", "strong"]
    lines = []
    for _ in range(n_docs):
        for _ in range(rng.randint(2, 8)):
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) + " .")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def test_cli_help():
    result = subprocess.run([sys.executable, "-m", "bertedu.run_pretraining", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--model-size", "--corpus", "--steps", "--batch-size", "--output-dir", "--resume"):
        assert option in result.stdout


def test_cli_pretrains_and_saves_a_folder_transformers_loads(tmp_path):
    import transformers

    from bertedu.run_pretraining import main

    corpus = write_corpus(tmp_path / "train.txt", 30, seed=0)
    held_out = write_corpus(tmp_path / "eval.txt", 6, seed=1)
    out = tmp_path / "run"
    args = ["--corpus", str(corpus), "--eval-corpus", str(held_out), "--output-dir", str(out),
            "--model-size", "tiny", "--vocab-size", "80", "--max-seq-length", "32", "--steps", "4",
            "--batch-size", "8", "--eval-every", "2", "--save-every", "2", "--no-progress"]
    result = main(args)
    assert [r["step"] for r in result["history"].eval] == [2, 4]
    for name in ("config.json", "model.safetensors", "vocab.txt", "checkpoint.pt", "history.json"):
        assert (out / name).is_file(), name

    ours = BertForPreTraining.from_pretrained(out)
    theirs = transformers.BertForPreTraining.from_pretrained(out).eval()
    tokenizer = transformers.BertTokenizer.from_pretrained(out)
    assert tokenizer.vocab_size == ours.config.vocab_size == 80
    encoded = tokenizer("the cat sat .", "a dog ran .", return_tensors="pt")
    with torch.no_grad():
        expected = theirs(**encoded)
        got = ours(**encoded)
    torch.testing.assert_close(got.logits, expected.prediction_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(got.seq_relationship_logits, expected.seq_relationship_logits, rtol=0, atol=1e-5)

    with pytest.raises(SystemExit, match="--resume"):  # never silently overwrite a run
        main(args)
    resumed = main(args + ["--resume"])  # the run is complete: resuming changes nothing
    assert resumed["history"].losses == result["history"].losses


def test_cli_records_its_command_and_sets_the_recipe_model(tmp_path):
    import json

    from bertedu.run_pretraining import main

    corpus = write_corpus(tmp_path / "train.txt", 30, seed=0)
    held_out = write_corpus(tmp_path / "eval.txt", 6, seed=1)
    argv = ["--corpus", str(corpus), "--eval-corpus", str(held_out), "--output-dir", str(tmp_path / "run"),
            "--num-layers", "1", "--hidden-size", "24", "--num-heads", "2", "--vocab-size", "80",
            "--max-seq-length", "32", "--steps", "2", "--batch-size", "8", "--no-progress", "--threads", "1"]
    main(argv)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["command"] == "python -m bertedu.run_pretraining " + " ".join(argv)
    assert run["seed"] == 0 and run["threads"] == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"]) == (1, 24, 96)
    with pytest.raises(SystemExit, match="own sizes"):
        main(argv[:-2] + ["--model-size", "tiny", "--output-dir", str(tmp_path / "other")])


# ---------------------------------------------------------------------------------------
# Further pretraining: MaskedLMDataset, masked_lm_batch_loss, masked_lm_accuracy
# ---------------------------------------------------------------------------------------
def test_static_masks_stay_dynamic_masks_change_per_epoch():
    tokenizer = small_tokenizer()
    static = MaskedLMDataset(tokenizer, TEXTS * 20, masking="static", seed=1)
    dynamic = MaskedLMDataset(tokenizer, TEXTS * 20, masking="dynamic", seed=1)
    first = [static[i]["labels"] for i in range(len(static))]
    static.set_epoch(3)
    assert all(torch.equal(a, static[i]["labels"]) for i, a in enumerate(first))
    epoch0 = [dynamic[i]["input_ids"] for i in range(len(dynamic))]
    assert all(torch.equal(a, dynamic[i]["input_ids"]) for i, a in enumerate(epoch0))  # same epoch, same mask
    dynamic.set_epoch(1)
    assert any(not torch.equal(a, dynamic[i]["input_ids"]) for i, a in enumerate(epoch0))
    dynamic.set_epoch(0)
    assert all(torch.equal(a, dynamic[i]["labels"]) for i, a in enumerate(first))  # epoch 0 = the static masks


def test_masked_lm_items_and_batches():
    tokenizer = small_tokenizer()
    data = MaskedLMDataset(tokenizer, TEXTS, masking="static")
    item = data[4]
    ids = tokenizer(TEXTS[4])["input_ids"]
    assert item["labels"][0] == IGNORE_INDEX and item["labels"][-1] == IGNORE_INDEX  # never [CLS] / [SEP]
    chosen = item["labels"] != IGNORE_INDEX
    assert int(chosen.sum()) == max(1, round(0.15 * (len(ids) - 2)))
    assert item["labels"][chosen].tolist() == [ids[i] for i in chosen.nonzero().flatten().tolist()]
    batch = data.collate([data[i] for i in range(5)])
    T = max(data.lengths)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {k: (5, T) for k in
                                                            ("input_ids", "token_type_ids", "attention_mask", "labels")}
    assert batch["attention_mask"].sum(1).tolist() == data.lengths
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_masked_lm_batch_loss_equals_the_heads_loss():
    tokenizer = small_tokenizer()
    model = pretrained(tokenizer)
    data = MaskedLMDataset(tokenizer, TEXTS, masking="static")
    batch = data.collate([data[i] for i in range(5)])
    assert_close(masked_lm_batch_loss(model, batch), model(**batch).loss)  # BertForPreTraining, MLM labels only
    masked_lm = BertForMaskedLM(model.config)
    masked_lm.load_state_dict(model.state_dict(), strict=False)
    assert_close(masked_lm_batch_loss(masked_lm, batch), masked_lm(**batch).loss)


def test_masked_lm_accuracy_counts_only_mask_positions():
    tokenizer = small_tokenizer()
    model = pretrained(tokenizer)
    data = MaskedLMDataset(tokenizer, TEXTS * 4, masking="static", probability=0.5)
    batch = data.collate([data[i] for i in range(len(data))])
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # (B, T, V)
    shown = (batch["labels"] != IGNORE_INDEX) & (batch["input_ids"] == tokenizer.mask_token_id)
    expected = (logits.argmax(-1)[shown] == batch["labels"][shown]).float().mean().item()
    assert masked_lm_accuracy(model, data, batch_size=3) == pytest.approx(expected)


def test_selective_masks_choose_the_most_important_tokens():
    tokenizer = small_tokenizer()
    ids = [tokenizer(t)["input_ids"] for t in TEXTS]
    importance = [torch.arange(len(row), dtype=torch.float) for row in ids]  # later tokens matter more
    for scores in importance:
        scores[-1] = 100.0                                                   # [SEP] is never eligible
    data = MaskedLMDataset(tokenizer, TEXTS, masking="selective", importance=importance, seed=3)
    for i, row in enumerate(ids):
        n = len(row) - 2
        k = max(1, round(0.15 * n))
        chosen = (data[i]["labels"] != IGNORE_INDEX).nonzero().flatten().tolist()
        assert chosen == list(range(len(row) - 1 - k, len(row) - 1)), (i, chosen)  # the k last inner tokens
    data.set_epoch(2)                                                        # selective masks are fixed
    assert all(torch.equal(data[i]["labels"], MaskedLMDataset(tokenizer, TEXTS, masking="selective",
                                                             importance=importance, seed=3)[i]["labels"])
               for i in range(len(TEXTS)))


def test_mask_tokens_without_priority_is_unchanged_and_ties_are_random():
    tokenizer = small_tokenizer()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")["input_ids"]
    plain = mask_tokens(batch, tokenizer, 0.5, torch.Generator().manual_seed(0))
    flat = mask_tokens(batch, tokenizer, 0.5, torch.Generator().manual_seed(0), priority=torch.zeros(batch.shape))
    assert torch.equal(plain[1], flat[1])  # equal priorities: the same random choice as without


def test_token_importance_is_the_confidence_lost_by_deleting_a_piece():
    tokenizer = small_tokenizer()
    torch.manual_seed(0)
    model = pooling.PooledClassifier(pretrained(tokenizer).bert, pooling="mean").eval()
    text = TEXTS[2]
    scores = token_importance(model, tokenizer, [text, TEXTS[0]], batch_size=4)[0]
    ids = tokenizer(text)["input_ids"]
    assert scores.shape == (len(ids),) and scores[0] == 0 and scores[-1] == 0
    with torch.no_grad():
        full = model(input_ids=torch.tensor([ids])).logits.softmax(-1)[0]
        label = int(full.argmax())
        for i in range(1, len(ids) - 1):
            without = model(input_ids=torch.tensor([ids[:i] + ids[i + 1:]])).logits.softmax(-1)[0]
            assert scores[i].item() == pytest.approx((full[label] - without[label]).item(), abs=1e-5)
    with pytest.raises(ValueError, match="exactly when masking='selective'"):
        MaskedLMDataset(tokenizer, TEXTS, masking="selective")
    with pytest.raises(ValueError, match="one score per WordPiece"):
        MaskedLMDataset(tokenizer, TEXTS, masking="selective", importance=[torch.zeros(2)] * len(TEXTS))


def test_label_association_is_the_smoothed_log_count_ratio():
    tokenizer = small_tokenizer()
    texts, labels = ["good good film", "bad film", "bad plot"], [1, 0, 0]
    scores = label_association(tokenizer, texts, labels, smoothing=1.0)
    V = tokenizer.vocab_size
    good, bad, film = tokenizer.convert_tokens_to_ids(["good", "film", "bad"])[0], \
        tokenizer.convert_tokens_to_ids(["bad"])[0], tokenizer.convert_tokens_to_ids(["film"])[0]
    positive_total, negative_total = 3 + V, 4 + V                 # tokens per class + smoothing
    expected_good = abs(math.log((2 + 1) / positive_total) - math.log(1 / negative_total))
    expected_film = abs(math.log((1 + 1) / positive_total) - math.log((1 + 1) / negative_total))
    assert scores[good].item() == pytest.approx(expected_good, rel=1e-5)
    assert scores[film].item() == pytest.approx(expected_film, rel=1e-5)
    assert scores[bad] > scores[film] and scores[tokenizer.cls_token_id] == 0
    with pytest.raises(ValueError, match="0 or 1"):
        label_association(tokenizer, texts, [2, 0, 0])
    with pytest.raises(ValueError, match="as many labels"):
        label_association(tokenizer, texts, [1])


def test_mlm_pieces_refuse_bad_input():
    tokenizer = small_tokenizer()
    with pytest.raises(ValueError, match="'static', 'dynamic' or 'selective'"):
        MaskedLMDataset(tokenizer, TEXTS, masking="sometimes")
    with pytest.raises(ValueError, match="texts is empty: give at least one sentence"):
        MaskedLMDataset(tokenizer, [])
    with pytest.raises(ValueError, match=r"probability must be in \(0, 1\]"):
        MaskedLMDataset(tokenizer, TEXTS, probability=0.0)
    with pytest.raises(ValueError, match="masking='static'"):
        masked_lm_accuracy(pretrained(tokenizer), MaskedLMDataset(tokenizer, TEXTS))
    data = MaskedLMDataset(tokenizer, TEXTS, masking="static")
    batch = data.collate([data[0]])
    with pytest.raises(ValueError, match="needs labels"):
        masked_lm_batch_loss(pretrained(tokenizer), {k: v for k, v in batch.items() if k != "labels"})
    with pytest.raises(ValueError, match="every label is -100"):
        masked_lm_batch_loss(pretrained(tokenizer), {**batch, "labels": torch.full_like(batch["labels"], IGNORE_INDEX)})
