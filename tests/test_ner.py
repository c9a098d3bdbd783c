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
    ([{"tokens": "EU rejects", "ner_tags": ["O"]}], TypeError, "must be a list of word strings"),
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
    predicted = predict_tags(model, subset, batch_size=8)
    model.eval()
    with torch.no_grad():
        for i in range(len(subset)):
            logits = model(subset[i]["input_ids"][None]).logits[0]  # (T, 9)
            assert predicted[i] == word_tags(logits.argmax(-1), subset.word_ids[i], CONLL_NER_LABELS,
                                             subset.num_words[i])
    assert [len(tags) for tags in predicted] == subset.num_words
    assert len({tag for tags in predicted for tag in tags}) > 1  # an untrained model, but not constant
