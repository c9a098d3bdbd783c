"""Task heads on top of `BertModel`: pretraining (MLM + NSP), masked LM, sequence
classification or regression, token classification, extractive question answering.

Names follow Hugging Face's (`cls.predictions.transform`, `cls.predictions.bias`,
`cls.seq_relationship`, `classifier`, `qa_outputs`), so checkpoints load with no mapping.

Label conventions: MLM labels are the original ids at the chosen positions and -100
elsewhere (ignored by the loss); NSP label 0 = sentence B follows A (IsNext), 1 = B is a
random sentence (NotNext), as in Google's code and transformers. d2l's BERT uses the
opposite NSP convention and an MLM head with ReLU; ours uses GELU like the real checkpoints.

`MultiTaskClassifier` (chapter 12) wraps a classifier and adds an auxiliary masked-LM loss
while it fine-tunes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import BertConfig
from .model import BertModel, BertPreTrainedModel, activation

IGNORE_INDEX = -100  # label of positions that must not enter a loss


@dataclass
class HeadOutput:
    """What every head returns. Only the fields a head produces are set.

    Attributes:
        loss: scalar tensor when labels were given.
        logits: `[B, num_labels]` (sequence), `[B, T, num_labels]` (token) or `[B, T, V]` (MLM).
        seq_relationship_logits: `[B, 2]`, NSP (pretraining only).
        start_logits, end_logits: `[B, T]` (question answering).
        hidden_states, attentions: passed through from `BertModel` on request.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    @property
    def prediction_logits(self) -> torch.Tensor | None:
        """The MLM logits `[B, T, V]` (Hugging Face's name in `BertForPreTraining`)."""
        return self.logits


# ---------------------------------------------------------------------------------------
# The masked-language-model head
# ---------------------------------------------------------------------------------------
class BertPredictionHeadTransform(nn.Module):
    """dense -> GELU -> LayerNorm, applied to every position before the vocabulary projection."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    """Scores every vocabulary entry at every position: `transform(h) @ E^T + b`.

    The decoder weight IS the word-embedding matrix E (tied, as in the paper), so only the
    output bias `b` (`cls.predictions.bias`) is the head's own.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)  # tied to E
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states):
        # one fused matrix product with the bias (F.linear), not a product and then a separate
        # `+ bias` pass over the [B, T, V] scores
        return F.linear(self.transform(hidden_states), self.decoder.weight, self.bias)  # (B, T, V)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)  # NSP on the pooled [CLS]


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)


def check_labels(labels, expected_shape: tuple[int, ...], name: str = "labels",
                 integer: bool = True) -> None:
    """Refuse labels of the wrong type or shape before a loss could broadcast them silently."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(labels).__name__}: use torch.tensor(...)")
    if tuple(labels.shape) != tuple(expected_shape):
        raise ValueError(f"{name} must have shape {list(expected_shape)}, got {list(labels.shape)}")
    if integer and labels.is_floating_point():
        raise TypeError(f"{name} must hold integer class ids (torch.long), got dtype {labels.dtype}")


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the positions whose label is not -100.

    Padding, special tokens and unchosen positions carry -100 and so never enter the loss.
    (d2l's published MLM loss averages over padded prediction slots too; this one does not.)
    """
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)


class BertForPreTraining(BertPreTrainedModel):
    """BERT with both pretraining heads: masked LM over tokens and NSP over `[CLS]`.

    The loss, when both label sets are given, is their sum, as in the paper.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.init_weights()

    def tie_weights(self):
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                next_sentence_label=None, output_hidden_states=False, output_attentions=False):
        """Args as `BertModel.forward`, plus `labels` `[B, T]` (ids, -100 = ignored) and
        `next_sentence_label` `[B]` (0 = IsNext, 1 = NotNext)."""
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states,
                        output_attentions)
        mlm_logits = self.cls.predictions(out.last_hidden_state)  # (B, T, V)
        nsp_logits = self.cls.seq_relationship(out.pooler_output)  # (B, 2)
        loss = None
        if labels is not None:
            check_labels(labels, input_ids.shape)
            loss = masked_lm_loss(mlm_logits, labels)
        if next_sentence_label is not None:
            if next_sentence_label.dim() == 2:  # [B, 1] is accepted, as in transformers
                next_sentence_label = next_sentence_label.reshape(-1)
            check_labels(next_sentence_label, (input_ids.size(0),), "next_sentence_label")
            nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label.reshape(-1))
            loss = nsp_loss if loss is None else loss + nsp_loss
        return HeadOutput(loss=loss, logits=mlm_logits, seq_relationship_logits=nsp_logits,
                          hidden_states=out.hidden_states, attentions=out.attentions)


class BertForMaskedLM(BertPreTrainedModel):
    """BERT with the masked-LM head only (fill in the blanks)."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.init_weights()

    def tie_weights(self):
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states=False, output_attentions=False):
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states,
                        output_attentions)
        logits = self.cls.predictions(out.last_hidden_state)  # (B, T, V)
        loss = None
        if labels is not None:
            check_labels(labels, input_ids.shape)
            loss = masked_lm_loss(logits, labels)
        return HeadOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                          attentions=out.attentions)


# ---------------------------------------------------------------------------------------
# Fine-tuning heads
# ---------------------------------------------------------------------------------------
def head_dropout(config: BertConfig) -> nn.Dropout:
    p = config.classifier_dropout
    return nn.Dropout(config.hidden_dropout_prob if p is None else p)


class BertForSequenceClassification(BertPreTrainedModel):
    """`[CLS]` -> pooler -> dropout -> linear: one score per class for the whole input.

    With `config.num_labels == 1` it is a regression head (e.g. STS-B similarity) trained with
    mean squared error; otherwise cross-entropy over the classes.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        self.dropout = head_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states=False, output_attentions=False):
        """`labels`: LongTensor `[B]` of class ids, or FloatTensor `[B]` targets for regression."""
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states,
                        output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = None
        if labels is not None:
            if self.num_labels == 1:  # regression: one target per example, [B] or [B, 1]
                if labels.shape not in ((logits.size(0),), (logits.size(0), 1)):
                    raise ValueError(f"regression labels must have shape [{logits.size(0)}] or "
                                     f"[{logits.size(0)}, 1], got {tuple(labels.shape)}")
                loss = F.mse_loss(logits.squeeze(-1), labels.reshape(-1).to(logits.dtype))
            else:
                check_labels(labels, (logits.size(0),))
                loss = F.cross_entropy(logits, labels)
        return HeadOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                          attentions=out.attentions)


class BertForTokenClassification(BertPreTrainedModel):
    """One class per token (NER): every position's vector -> dropout -> linear.

    Label positions with -100 (special tokens, padding, non-first WordPieces) are ignored.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = head_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states=False, output_attentions=False):
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states,
                        output_attentions)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            check_labels(labels, input_ids.shape)
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels), labels.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        return HeadOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                          attentions=out.attentions)


class BertForQuestionAnswering(BertPreTrainedModel):
    """Extractive QA: for every token, a logit for "answer starts here" and "ends here"."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, start_positions=None,
                end_positions=None, output_hidden_states=False, output_attentions=False):
        """`start_positions`, `end_positions`: LongTensor `[B]` token indices of the answer.

        The loss is the mean of the start and end cross-entropies; positions outside the
        sequence (an answer cut off by truncation) are clamped to T and ignored.
        """
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states,
                        output_attentions)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = logits.unbind(dim=-1)  # (B, T) each
        loss = None
        if (start_positions is None) != (end_positions is None):
            raise ValueError("give both start_positions and end_positions for a loss, or neither")
        if start_positions is not None:
            B, T = start_logits.shape
            check_labels(start_positions, (B,), "start_positions")
            check_labels(end_positions, (B,), "end_positions")
            start = start_positions.reshape(-1).clamp(0, T)  # index T = "not in this window"
            end = end_positions.reshape(-1).clamp(0, T)
            loss = (F.cross_entropy(start_logits, start, ignore_index=T)
                    + F.cross_entropy(end_logits, end, ignore_index=T)) / 2
        return HeadOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                          hidden_states=out.hidden_states, attentions=out.attentions)


class MultiTaskClassifier(nn.Module):
    """A classifier trained with an auxiliary masked-LM loss on the same batch.

    In training mode with labels, the loss is
    `cross_entropy(classifier(x), y) + mlm_weight * masked_lm_loss(masked copy of x)`: the batch
    is masked again (BERT's 80/10/10 rule, torch's global generator, which `train` seeds) and the
    MLM head predicts the chosen tokens. In eval mode it is the classifier alone. The MLM head's
    decoder is tied to the classifier's word embeddings.

    Args:
        classifier: a `bertedu.pooling.PooledClassifier` (anything with `.bert` and the
            classifier's forward).
        mlm_head: a `BertLMPredictionHead`, e.g. `copy.deepcopy(pretrained.cls.predictions)`.
        tokenizer: for the special and `[MASK]` ids.
        mlm_weight: weight of the auxiliary loss (> 0).
        probability: share of tokens masked.
    """

    def __init__(self, classifier: nn.Module, mlm_head: nn.Module, tokenizer, mlm_weight: float = 0.5,
                 probability: float = 0.15):
        super().__init__()
        if not mlm_weight > 0:
            raise ValueError(f"mlm_weight must be > 0 (0 is plain fine-tuning), got {mlm_weight!r}")
        from .pretraining import special_ids  # here: pretraining imports this module
        special_ids(tokenizer)
        self.classifier, self.mlm_head, self.tokenizer = classifier, mlm_head, tokenizer
        self.mlm_weight, self.probability = mlm_weight, probability
        self.mlm_head.decoder.weight = classifier.bert.embeddings.word_embeddings.weight  # tied

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, **kwargs) -> HeadOutput:
        out = self.classifier(input_ids, token_type_ids, attention_mask, labels=labels, **kwargs)
        if not self.training or labels is None:
            return out
        from .pretraining import mask_tokens
        masked, mlm_labels = mask_tokens(input_ids, self.tokenizer, self.probability)  # (B, T) each
        chosen = mlm_labels != IGNORE_INDEX
        hidden = self.classifier.bert(masked, token_type_ids, attention_mask).last_hidden_state
        auxiliary = F.cross_entropy(self.mlm_head(hidden[chosen]), mlm_labels[chosen])  # over N chosen
        return HeadOutput(loss=out.loss + self.mlm_weight * auxiliary, logits=out.logits)
