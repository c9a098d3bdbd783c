"""BERT's hyper-parameters in one dataclass, with the field names of Google's and Hugging
Face's `BertConfig`, so a `config.json` from any Hugging Face BERT folder reads as is.

    >>> from bertedu.config import BertConfig
    >>> BertConfig.base().hidden_size
    768
    >>> small = dataclasses.replace(BertConfig.base(), num_hidden_layers=2)
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BertConfig:
    vocab_size: int = 30522  # WordPiece vocabulary size (30,522 for the English uncased models)
    hidden_size: int = 768  # H: width of every token vector
    num_hidden_layers: int = 12  # L: number of encoder blocks
    num_attention_heads: int = 12  # A: heads per attention layer; H must divide by A
    intermediate_size: int = 3072  # width of the feed-forward layer, 4H in BERT
    hidden_act: str = "gelu"  # exact (erf) GELU; "gelu_new"/"gelu_pytorch_tanh" use tanh
    hidden_dropout_prob: float = 0.1  # dropout on embeddings and on every sub-layer output
    attention_probs_dropout_prob: float = 0.1  # dropout on the attention weights
    max_position_embeddings: int = 512  # longest input the position table covers
    type_vocab_size: int = 2  # segment ids: 0 = sentence A, 1 = sentence B
    initializer_range: float = 0.02  # std of the normal init of weights
    layer_norm_eps: float = 1e-12  # BERT's LayerNorm epsilon (PyTorch's default is 1e-5)
    pad_token_id: int = 0  # id of [PAD]; its word embedding starts at zero
    num_labels: int = 2  # outputs of a classification head; 1 means regression
    classifier_dropout: float | None = None  # dropout before a task head; None: hidden_dropout_prob
    id2label: dict[int, str] | None = None  # optional label names of a fine-tuned head
    architectures: list[str] | None = None  # the head classes a saved folder holds (HF field)
    extra: dict = field(default_factory=dict, repr=False)  # unknown config.json keys, kept on save

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size", "num_labels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "layer_norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if name.endswith("dropout_prob") and not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
            if not name.endswith("dropout_prob") and value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if self.classifier_dropout is not None and (isinstance(self.classifier_dropout, bool)
                                                    or not isinstance(self.classifier_dropout, (int, float))
                                                    or not 0.0 <= self.classifier_dropout < 1.0):
            raise ValueError(f"classifier_dropout must be None or in [0, 1), got {self.classifier_dropout!r}")
        if not isinstance(self.hidden_act, str):
            raise ValueError(f"hidden_act must be a string such as 'gelu', got {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be a multiple of "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.id2label is not None:  # JSON keys are strings
            self.id2label = {int(k): v for k, v in self.id2label.items()}
            if len(self.id2label) != self.num_labels:
                raise ValueError(f"id2label names {len(self.id2label)} labels but num_labels="
                                 f"{self.num_labels}; give both, or only num_labels")

    # ---- presets ---------------------------------------------------------------------
    @classmethod
    def base(cls, **overrides) -> "BertConfig":
        """BERT-base: L=12, H=768, A=12, 110M parameters (109,482,240 in `BertModel`)."""
        return cls(**overrides)

    @classmethod
    def large(cls, **overrides) -> "BertConfig":
        """BERT-large: L=24, H=1024, A=16, 340M parameters (335,141,888 in `BertModel`)."""
        return cls(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                   intermediate_size=4096, **overrides)

    @classmethod
    def mini(cls, **overrides) -> "BertConfig":
        """All-MiniLM-L6-v2's shape: L=6, H=384, A=12 (22.7M parameters)."""
        return cls(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                   intermediate_size=1536, **overrides)

    @classmethod
    def tiny(cls, **overrides) -> "BertConfig":
        """A BERT small enough to pretrain on a laptop CPU in minutes: L=2, H=128, A=2."""
        defaults = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512, max_position_embeddings=128)
        defaults.update(overrides)
        return cls(**defaults)

    @property
    def head_size(self) -> int:
        """Width of one attention head, H / A."""
        return self.hidden_size // self.num_attention_heads

    # ---- JSON in the Hugging Face `config.json` form --------------------------------
    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        if data["id2label"] is None:
            del data["id2label"]
        else:
            data["label2id"] = {v: k for k, v in data["id2label"].items()}
        if data["architectures"] is None:
            del data["architectures"]
        return {**self.extra, "model_type": "bert", **data}

    @classmethod
    def from_dict(cls, data: dict) -> "BertConfig":
        """Build a config from a `config.json` dict; keys we do not use are kept in `extra`."""
        if not isinstance(data, dict):
            raise ValueError(f"a BERT config must be a JSON object of fields, got {type(data).__name__}")
        if data.get("model_type", "bert") != "bert":
            raise ValueError(f"this is a {data['model_type']!r} config, not a BERT one")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported, got "
                             f"{data['position_embedding_type']!r}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        if "id2label" in known and "num_labels" not in known:  # transformers stores only id2label
            known["num_labels"] = len(known["id2label"])
        extra = {k: v for k, v in data.items() if k not in names and k not in ("model_type", "label2id")}
        return cls(**known, extra=extra)

    def to_json_file(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json_file(cls, path: str | Path) -> "BertConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as error:  # name the file as well as the field
            raise ValueError(f"{path}: {error}") from error
