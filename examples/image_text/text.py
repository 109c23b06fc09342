"""Word-level tokenizer built from the training reports."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PAD", "UNK", "WordTokenizer"]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


@dataclass(frozen=True)
class WordTokenizer:
    """Lower-cased words, numbers and punctuation marks mapped to ids (0 = pad, 1 = unknown).

    Example:
        >>> tok = WordTokenizer.build(["No pleural effusion.", "Small left pleural effusion."])
        >>> ids = tok.encode(["No left effusion!"], max_len=6)
        >>> ids.shape, tok.decode(ids[0])
        (torch.Size([1, 6]), 'no left effusion <unk>')
    """

    vocab: tuple[str, ...]

    @staticmethod
    def split(text: str) -> list[str]:
        """The word tokens of ``text``."""
        return _WORD.findall(text.lower())

    @classmethod
    def build(cls, sentences: Iterable[str], *, min_freq: int = 1,
              max_size: int | None = None) -> WordTokenizer:
        """A vocabulary of the tokens seen at least ``min_freq`` times (most frequent first)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts = Counter(t for s in sentences for t in cls.split(s))
        words = sorted((w for w, c in counts.items() if c >= min_freq),
                       key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(max_size - 2, 0)]
        return cls((PAD, UNK, *words))

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def index(self) -> dict[str, int]:
        """Token -> id."""
        return {w: i for i, w in enumerate(self.vocab)}

    def encode(self, sentences: Sequence[str], max_len: int) -> Tensor:
        """Token ids ``(len(sentences), max_len)``, right-padded with 0, truncated."""
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        index = self.index
        out = torch.zeros(len(sentences), max_len, dtype=torch.long)
        for i, s in enumerate(sentences):
            ids = [index.get(t, 1) for t in self.split(s)][:max_len]
            if ids:
                out[i, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Tensor) -> str:
        """Tokens of a 1-D id tensor, padding dropped."""
        return " ".join(self.vocab[i] for i in ids.tolist() if i != 0)
