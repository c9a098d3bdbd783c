"""A tiny BERT over a ten-word vocabulary, shared by the tests of further pretraining
(test_pretraining.py), layer-wise learning rates (test_training.py) and pooling
(test_pooling.py)."""
import torch

from bertedu import BertConfig, BertForPreTraining
from bertedu.tokenization import BertTokenizer

WORDS = "a good bad film movie plot dull fun not very".split()
TEXTS = ["a good film", "a very dull movie", "not fun", "a plot", "good good film very bad plot"]


def small_tokenizer() -> BertTokenizer:
    """The specials then WORDS, one id each."""
    return BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS)


def tiny_config(tokenizer, **overrides):
    return BertConfig.tiny(vocab_size=tokenizer.vocab_size, hidden_size=16, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=16, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0, **overrides)


def pretrained(tokenizer, seed=0):
    torch.manual_seed(seed)
    return BertForPreTraining(tiny_config(tokenizer)).eval()
