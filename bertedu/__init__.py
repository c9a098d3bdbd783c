"""bertedu: BERT built step by step, the library behind the bertedu book.

The chapters build each piece in plain code, prove it equal to the piece here, and from then
on import it. See the README for which chapter builds which module.
"""
from .config import BertConfig
from .model import BertModel, BertModelOutput
from .heads import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    HeadOutput,
)
from .checkpoints import minilm_path

__version__ = "0.1.0"
