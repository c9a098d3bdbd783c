"""A tiny random BERT classifier and a padded random batch for it, shared by the tests of
bertedu.adapters and bertedu.compression (each file gives its own configuration)."""
import torch

from bertedu import BertConfig, BertForSequenceClassification
from bertedu.training import set_seed


def tiny_classifier(config: BertConfig, seed: int = 0) -> BertForSequenceClassification:
    """A classifier with seeded random weights, in eval mode."""
    set_seed(seed)
    return BertForSequenceClassification(config).eval()


def random_batch(seed: int = 1, B: int = 4, T: int = 7, vocab_size: int = 100) -> dict:
    """B sequences of T random ids in [1, vocab_size); the second one is padded after 5 tokens."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 5:] = 0
    return {"input_ids": torch.randint(1, vocab_size, (B, T), generator=g), "attention_mask": mask}
