"""bertedu.ner: word/WordPiece alignment for token classification, and back to word tags.

The reference for the alignment is `transformers.BertTokenizerFast(words,
is_split_into_words=True).word_ids()`, checked on every CoNLL-2003 dev sentence.
"""
import pytest
import torch
import transformers

from bertedu import BertConfig, BertForTokenClassification
from bertedu.data import CONLL_NER_LABELS, load_conll2003
from bertedu.heads import IGNORE_INDEX
from bertedu.metrics import entity_scores
from bertedu.ner import (NerDataset, align_labels, collate_token_classification, encode_words, predict_tags,
                         word_tags)
from bertedu.tokenization import BertTokenizer
from bertedu.training import set_seed


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def conll_dev(data_dir):
    return load_conll2003("dev")


@pytest.fixture(scope="module")
def dev_dataset(conll_dev, tokenizer):
    return NerDataset(conll_dev, tokenizer)


# ---------------------------------------------------------------------------------------
# Words -> pieces
# ---------------------------------------------------------------------------------------
def test_encode_words_keeps_each_piece_with_its_word(tokenizer):
    enc = encode_words(["Peter", "Blackburn", "visited", "the", "U.S."], tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert pieces == ["[CLS]", "peter", "blackburn", "visited", "the", "u", ".", "s", ".", "[SEP]"]
    assert enc["word_ids"] == [None, 0, 1, 2, 3, 4, 4, 4, 4, None]
    assert enc["token_type_ids"] == [0] * 10
    enc = encode_words(["unaffable", "x"], tokenizer)  # one word, three pieces
    assert tokenizer.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "una", "##ffa", "##ble", "x", "[SEP]"]
    assert enc["word_ids"] == [None, 0, 0, 0, 1, None]


def test_word_ids_equal_transformers_on_all_conll_dev_sentences(conll_dev, dev_dataset, minilm_dir):
    hf = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    theirs = hf([s["tokens"] for s in conll_dev], is_split_into_words=True)
    assert len(dev_dataset) == len(conll_dev) == 3250
    for i in range(len(conll_dev)):
        assert dev_dataset[i]["input_ids"].tolist() == theirs["input_ids"][i], i
        assert dev_dataset.word_ids[i] == theirs.word_ids(i), i
    assert dev_dataset.num_truncated == 0
    # Every word has at least one piece, so every word has a label to learn.
    assert all(set(w for w in ids if w is not None) == set(range(n))
               for ids, n in zip(dev_dataset.word_ids, dev_dataset.num_words))


def test_truncation_cuts_pieces_and_counts_the_sentences(tokenizer):
    records = [{"tokens": ["EU", "rejects", "German", "call"], "ner_tags": ["B-ORG", "O", "B-MISC", "O"]},
               {"tokens": ["Hi"], "ner_tags": ["O"]}]
    ds = NerDataset(records, tokenizer, max_length=4)  # [CLS] eu rejects [SEP]
    assert tokenizer.convert_ids_to_tokens(ds[0]["input_ids"]) == ["[CLS]", "eu", "rejects", "[SEP]"]
    assert ds.word_ids[0] == [None, 0, 1, None]
    assert ds[0]["labels"].tolist() == [IGNORE_INDEX, 3, 0, IGNORE_INDEX]
    assert ds.num_truncated == 1
    # Cut-off words are tagged "O" when going back to words.
    assert word_tags([0, 3, 0, 0], ds.word_ids[0], CONLL_NER_LABELS, 4) == ["B-ORG", "O", "O", "O"]


# ---------------------------------------------------------------------------------------
# Labels: first piece only, and back
# ---------------------------------------------------------------------------------------
def test_align_labels_labels_the_first_piece_only():
    assert align_labels([None, 0, 1, 2, 2, 3, None], [3, 0, 7, 0]) == [-100, 3, 0, 7, -100, 0, -100]
    assert align_labels([None, 0, 0, 0, None], [5]) == [-100, 5, -100, -100, -100]


def test_dataset_labels_on_a_conll_sentence(dev_dataset, conll_dev, tokenizer):
    # The first sentence with a word of several pieces.
    i = next(i for i, s in enumerate(conll_dev) if len(dev_dataset.word_ids[i]) > len(s["tokens"]) + 2)
    labels, word_ids = dev_dataset[i]["labels"].tolist(), dev_dataset.word_ids[i]
    gold = [CONLL_NER_LABELS.index(t) for t in conll_dev[i]["ner_tags"]]
    expected = [IGNORE_INDEX if w is None or (t > 0 and word_ids[t - 1] == w) else gold[w]
                for t, w in enumerate(word_ids)]
    assert labels == expected
    assert sum(label != IGNORE_INDEX for label in labels) == len(conll_dev[i]["tokens"])
    assert dev_dataset.tags[i] == conll_dev[i]["ner_tags"]


def test_word_tags_read_each_words_first_piece():
    # Pieces 4 (the second of word 2) says I-MISC (8); only the first piece (7, B-MISC) counts.
    assert word_tags([0, 3, 0, 7, 8, 0, 0], [None, 0, 1, 2, 2, 3, None], CONLL_NER_LABELS, 4) == \
        ["B-ORG", "O", "B-MISC", "O"]
    assert word_tags(torch.tensor([1, 2, 1]), [None, 0, None], ["O", "B-PER", "I-PER"], 1) == ["I-PER"]


def test_gold_labels_go_back_to_the_gold_tags_on_all_dev_sentences(dev_dataset, conll_dev):
    """The round trip words -> pieces -> words: feed the aligned labels back as predictions,
    with a wrong tag (I-MISC) on every piece the loss ignores, and get the gold tags back."""
    predicted = []
    for i in range(len(dev_dataset)):
        labels = dev_dataset[i]["labels"]
        pieces = torch.where(labels == IGNORE_INDEX, CONLL_NER_LABELS.index("I-MISC"), labels)
        predicted.append(word_tags(pieces, dev_dataset.word_ids[i], CONLL_NER_LABELS, dev_dataset.num_words[i]))
    gold = [s["ner_tags"] for s in conll_dev]
    assert predicted == gold
    assert entity_scores(gold, predicted)["overall"]["f1"] == 1.0


def test_int_tags_work_like_names(tokenizer):
    by_name = NerDataset([{"tokens": ["Peter", "lives"], "ner_tags": ["B-PER", "O"]}], tokenizer)
    by_id = NerDataset([{"tokens": ["Peter", "lives"], "ner_tags": [1, 0]}], tokenizer)
    assert torch.equal(by_name[0]["labels"], by_id[0]["labels"]) and by_id.tags == [["B-PER", "O"]]


def test_collate_pads_labels_with_ignore_index(tokenizer):
    ds = NerDataset([{"tokens": ["Peter", "Blackburn"], "ner_tags": ["B-PER", "I-PER"]},
                     {"tokens": ["unaffable"], "ner_tags": ["O"]}], tokenizer)
    batch = ds.collate([ds[0], ds[1]])
    pad = tokenizer.pad_token_id
    assert batch["input_ids"][0].tolist() == tokenizer("Peter Blackburn")["input_ids"] + [pad]
    assert batch["input_ids"][1].tolist() == tokenizer("unaffable")["input_ids"]
    assert batch["labels"].tolist() == [[-100, 1, 2, -100, -100], [-100, 0, -100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    unlabelled = NerDataset([{"tokens": ["Peter"]}], tokenizer)
    assert "labels" not in unlabelled.collate([unlabelled[0]]) and unlabelled.tags == []


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("records, error, message", [
    ([{"tokens": ["a", "b"], "ner_tags": ["O"]}], ValueError, r"records\[0\] has 2 tokens but 1 ner_tags"),
    ([{"tokens": ["a"], "ner_tags": ["B-XYZ"]}], ValueError, r"'B-XYZ' is not one of label_names"),
    ([{"tokens": ["a"], "ner_tags": [9]}], ValueError, r"= 9 is out of range \[0, 9\)"),
    ([{"tokens": ["a"], "ner_tags": [-1]}], ValueError, r"= -1 is out of range"),
    ([{"tokens": ["a"], "ner_tags": [1.0]}], TypeError, "tags are names"),
    ([{"tokens": [], "ner_tags": []}], ValueError, r"records\[0\]\['tokens'\] is empty"),
    ([{"tokens": "EU rejects", "ner_tags": ["O"]}], TypeError, r"must be a list of strings \(one per word\)"),
    ([{"tokens": ["a", 5], "ner_tags": ["O", "O"]}], TypeError, r"\['tokens'\]\[1\] is a int"),
    ([{"words": ["a"]}], ValueError, "has no 'tokens'"),
    ([{"tokens": ["a"], "ner_tags": ["O"]}, {"tokens": ["b"]}], ValueError, r"records\[1\] lacks 'ner_tags'"),
    ([], ValueError, "records is empty"),
])
def test_bad_records_are_refused(tokenizer, records, error, message):
    with pytest.raises(error, match=message):
        NerDataset(records, tokenizer)


def test_bad_alignment_inputs_are_refused(tokenizer):
    with pytest.raises(ValueError, match=r"word_ids\[3\] = 2, but there are only 2 word labels"):
        align_labels([None, 0, 1, 2, None], [0, 1])
    with pytest.raises(ValueError, match=r"word_labels\[1\] = 9 is out of range \[0, 9\)"):
        align_labels([None, 0, 1, None], [0, 9], num_labels=9)
    with pytest.raises(TypeError, match=r"word_labels\[0\] = 'O' is not an int"):
        align_labels([None, 0, None], ["O"])
    with pytest.raises(ValueError, match="3 piece predictions for 4 word_ids"):
        word_tags([0, 0, 0], [None, 0, 1, None], CONLL_NER_LABELS, 2)
    with pytest.raises(ValueError, match="predicted label id 9 is out of range"):
        word_tags([0, 9, 0], [None, 0, None], CONLL_NER_LABELS, 1)
    with pytest.raises(ValueError, match="must be 1-D"):
        word_tags(torch.zeros(1, 3, dtype=torch.long), [None, 0, None], CONLL_NER_LABELS, 1)
    with pytest.raises(ValueError, match="max_length must be an int >= 3"):
        encode_words(["a"], tokenizer, max_length=2)
    with pytest.raises(ValueError, match="words is empty"):
        encode_words([], tokenizer)
    with pytest.raises(ValueError, match="cannot collate an empty list"):
        collate_token_classification([], 0)


# ---------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------
def test_predict_tags_equals_one_sentence_at_a_time(conll_dev, tokenizer):
    set_seed(0)
    model = BertForTokenClassification(BertConfig.tiny(hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                                       num_labels=9, max_position_embeddings=256))
    subset = NerDataset(conll_dev[:24], tokenizer)
    assert subset.lengths != sorted(subset.lengths)  # so the length-sorted batches reorder
    predicted = predict_tags(model, subset, batch_size=8, mixed_precision=False)
    model.eval()
    with torch.no_grad():
        for i in range(len(subset)):
            logits = model(subset[i]["input_ids"][None]).logits[0]  # (T, 9)
            assert predicted[i] == word_tags(logits.argmax(-1), subset.word_ids[i], CONLL_NER_LABELS,
                                             subset.num_words[i])
    assert [len(tags) for tags in predicted] == subset.num_words
    assert len({tag for tags in predicted for tag in tags}) > 1  # an untrained model, but not constant


# ---------------------------------------------------------------------------------------
# The feature-based approach: frozen features, layer combinations, the tagger
# ---------------------------------------------------------------------------------------
from bertedu import BertModel  # noqa: E402
from bertedu.ner import (LAYER_COMBINATIONS, WORD_SHAPES, FeatureTagger, ScalarMix,  # noqa: E402
                         WordFeatureDataset, combine_layers, extract_word_features, predict_feature_tags,
                         word_shape)


def test_word_shape():
    words = ["rejects", "German", "EU", "1996", "U.S.", "A", "McDonald", "iPhone", "-", "O'Neill"]
    assert [WORD_SHAPES[word_shape(w)] for w in words] == [
        "lower", "Capitalised", "UPPER", "other", "UPPER", "Capitalised", "Capitalised", "other", "other",
        "Capitalised"]
    with pytest.raises(TypeError, match="word must be a str"):
        word_shape(3)


def test_extract_word_features_equals_transformers_hidden_states(minilm_dir, tokenizer, conll_dev):
    sentences = conll_dev[:6]
    ds = NerDataset(sentences, tokenizer)
    features = extract_word_features(BertModel.from_pretrained(minilm_dir), ds, batch_size=4, dtype=torch.float32)
    hf = transformers.BertModel.from_pretrained(minilm_dir).eval()
    for i, f in enumerate(features):
        assert f.shape == (7, ds.num_words[i], 384) and f.dtype == torch.float32
        with torch.no_grad():
            hidden = torch.stack(hf(ds[i]["input_ids"][None], output_hidden_states=True).hidden_states)[:, 0]  # (7, T, H)
        first = [ds.word_ids[i].index(w) for w in range(ds.num_words[i])]  # each word's first piece
        torch.testing.assert_close(f, hidden[:, first], atol=1e-5, rtol=1e-4)
    # stored in float16 by default: half the memory, the same numbers to 3 digits
    half = extract_word_features(BertModel.from_pretrained(minilm_dir), ds)
    assert half[0].dtype == torch.float16
    torch.testing.assert_close(half[0].float(), features[0], atol=1e-2, rtol=1e-2)


def test_words_cut_off_get_zero_features(tokenizer):
    set_seed(0)
    encoder = BertModel(BertConfig.tiny(hidden_size=16, num_attention_heads=2, intermediate_size=32,
                                        max_position_embeddings=64))
    ds = NerDataset([{"tokens": ["EU", "rejects", "German", "call"], "ner_tags": ["B-ORG", "O", "B-MISC", "O"]}],
                    tokenizer, max_length=4)  # [CLS] eu rejects [SEP]
    f = extract_word_features(encoder, ds, dtype=torch.float32)[0]
    assert f.shape == (encoder.config.num_hidden_layers + 1, 4, 16)
    assert f[:, :2].abs().sum() > 0 and f[:, 2:].abs().sum() == 0


def test_combine_layers_reads_the_papers_six_ways():
    layers = torch.arange(7.0)[:, None, None].expand(7, 3, 2)  # layer j holds the value j: (7, W=3, H=2)
    assert combine_layers(layers, "embeddings").unique().tolist() == [0.0]
    assert combine_layers(layers, "last").unique().tolist() == [6.0]
    assert combine_layers(layers, "second_to_last").unique().tolist() == [5.0]
    assert combine_layers(layers, "sum_last_four").unique().tolist() == [3.0 + 4 + 5 + 6]
    concat = combine_layers(layers, "concat_last_four")
    assert concat.shape == (3, 8) and concat[0].tolist() == [3.0, 3, 4, 4, 5, 5, 6, 6]
    mix = ScalarMix(7)
    torch.testing.assert_close(combine_layers(layers, "weighted_sum", mix), layers.mean(0))  # starts as the mean
    batch = layers[None].expand(5, 7, 3, 2)  # works on a batch too
    assert combine_layers(batch, "concat_last_four").shape == (5, 3, 8)
    with torch.no_grad():
        mix.scalars.copy_(torch.tensor([0.0, 0, 0, 0, 0, 0, 50.0]))
        mix.gamma.fill_(2.0)
    torch.testing.assert_close(mix(batch), torch.full((5, 3, 2), 12.0))  # all weight on layer 6, times 2
    torch.testing.assert_close(mix.weights.sum(), torch.tensor(1.0))


def test_combine_layers_refuses_bad_input():
    with pytest.raises(ValueError, match="choose one of"):
        combine_layers(torch.zeros(7, 3, 2), "mean")
    with pytest.raises(ValueError, match="needs 4 blocks besides the embedding layer, the features have 3"):
        combine_layers(torch.zeros(4, 3, 2), "sum_last_four")
    with pytest.raises(ValueError, match="weighted_sum needs mix"):
        combine_layers(torch.zeros(7, 3, 2), "weighted_sum")
    with pytest.raises(ValueError, match=r"must be \[\.\.\., L \+ 1, W, H\]"):
        combine_layers(torch.zeros(7, 3), "last")
    with pytest.raises(ValueError, match=r"layers must be \[\.\.\., 7, W, H\]"):
        ScalarMix(7)(torch.zeros(6, 3, 2))
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        ScalarMix(0)


def _toy_features():
    g = torch.Generator().manual_seed(0)
    records = [(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
               (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
               (["BRUSSELS", "1996-08-22", "in", "Paris"], ["B-LOC", "O", "O", "B-LOC"])]
    features = [torch.randn(7, len(words), 8, generator=g) for words, _ in records]
    return features, [tags for _, tags in records], [words for words, _ in records]


def test_word_feature_dataset_pads_a_batch():
    features, tags, words = _toy_features()
    ds = WordFeatureDataset(features, tags, words=words)
    assert ds.lengths == [4, 2, 4] and ds.tags == tags
    batch = ds.collate([ds[1], ds[0]])
    assert batch["features"].shape == (2, 7, 4, 8) and batch["features"].dtype == torch.float32
    torch.testing.assert_close(batch["features"][0, :, :2], features[1])
    assert batch["features"][0, :, 2:].abs().sum() == 0
    assert batch["word_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[1, 2, -100, -100], [3, 0, 7, 0]]
    assert batch["shapes"].tolist() == [[1, 1, 0, 0], [2, 0, 1, 0]]
    unlabelled = WordFeatureDataset(features)
    assert "labels" not in unlabelled.collate([unlabelled[0]]) and unlabelled.tags == []


def test_word_feature_dataset_refuses_bad_input():
    features, tags, words = _toy_features()
    with pytest.raises(ValueError, match="sentence 1 has 2 feature vectors but 3 tags"):
        WordFeatureDataset(features, [tags[0], tags[1] + ["O"], tags[2]])
    with pytest.raises(ValueError, match="tag 'B-XYZ' is not one of label_names"):
        WordFeatureDataset(features[:1], [["B-XYZ", "O", "O", "O"]])
    with pytest.raises(ValueError, match="tags has 2 sentences but features has 3"):
        WordFeatureDataset(features, tags[:2])
    with pytest.raises(ValueError, match=r"features\[1\] has shape \(6, 2, 8\)"):
        WordFeatureDataset([features[0], features[1][:6]])
    with pytest.raises(ValueError, match="features is empty"):
        WordFeatureDataset([])
    with pytest.raises(ValueError, match="sentence 0 has 4 feature vectors but 1 words"):
        WordFeatureDataset(features[:1], words=[["EU"]])


@pytest.mark.parametrize("how", LAYER_COMBINATIONS)
def test_feature_tagger_batches_equal_one_sentence_at_a_time(how):
    features, tags, words = _toy_features()
    ds = WordFeatureDataset(features, tags, words=words)
    set_seed(0)
    tagger = FeatureTagger(7, 8, len(CONLL_NER_LABELS), how, lstm_size=6, lstm_layers=2, projection_size=10,
                           num_shapes=len(WORD_SHAPES)).eval()
    batch = ds.collate([ds[i] for i in range(3)])
    out = tagger(**batch)
    assert out.logits.shape == (3, 4, 9) and out.loss.dim() == 0
    with torch.no_grad():
        for i in range(3):
            alone = tagger(**ds.collate([ds[i]])).logits[0]  # (W_i, 9)
            torch.testing.assert_close(out.logits[i, : ds.lengths[i]], alone, atol=1e-5, rtol=1e-5)
    # the loss is the mean over the real words only
    expected = torch.nn.functional.cross_entropy(
        torch.cat([out.logits[i, : ds.lengths[i]] for i in range(3)]), torch.cat([ds[i]["labels"] for i in range(3)]))
    torch.testing.assert_close(out.loss, expected)
    predicted = predict_feature_tags(tagger, ds, batch_size=2)
    assert predicted == [[CONLL_NER_LABELS[j] for j in out.logits[i, : ds.lengths[i]].argmax(-1).tolist()]
                         for i in range(3)]


def test_feature_tagger_learns_and_refuses_bad_input():
    features, tags, words = _toy_features()
    ds = WordFeatureDataset(features, tags)
    set_seed(0)
    tagger = FeatureTagger(7, 8, 9, "last", lstm_size=8, dropout=0.0)
    optimizer = torch.optim.Adam(tagger.parameters(), lr=0.05)
    batch = ds.collate([ds[i] for i in range(3)])
    for _ in range(60):
        loss = tagger(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05  # it can fit three sentences
    assert predict_feature_tags(tagger, ds) == tags
    with pytest.raises(ValueError, match="choose one of"):
        FeatureTagger(7, 8, 9, "first")
    with pytest.raises(ValueError, match=r"labels must be \[B, W\]"):
        tagger(batch["features"], batch["word_mask"], batch["labels"][:, :2])
    with pytest.raises(ValueError, match="give `shapes`"):
        FeatureTagger(7, 8, 9, "last", num_shapes=4)(batch["features"], batch["word_mask"])
