"""The Self-Debiasing baseline of Schick, Udupa & Schütze (2021) as a logits processor.

Taught in ``notebooks/07_decoding/try.ipynb`` (the baseline the word-balancing processor is compared with)
and used in ``notebooks/09_compare_methods.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor

from ..checks import check_number
from ..lm import forward_with_cache, pad_batch, pad_id_of
from .processor import _BatchTracker

#: The debiasing prefix of Schick et al. (2021) for gender, used by :class:`SelfDebiasProcessor`.
SELF_DEBIAS_PREFIX = "The following text discriminates against people because of their gender:\n"


class SelfDebiasProcessor(LogitsProcessor):
    """Self-Debiasing baseline: down-weight tokens that a "biased" prefix makes more likely.

    A second pass of the same model reads ``prefix + text`` (the prefix *describes* the bias, e.g.
    :data:`SELF_DEBIAS_PREFIX`) and gives ``p_bias``. Each token's probability becomes
    ``p̃(w) ∝ p(w) · max(ε, exp(−λ · max(0, p_bias(w) − p(w))))`` (Schick et al. 2021, eq. 3, with their
    λ = 50). Costs one extra forward pass per step (its own KV cache).
    Example: ``SelfDebiasProcessor(model, tok)`` in ``model.generate(logits_processor=...)``.
    Taught in ``notebooks/07_decoding/try.ipynb``.
    """

    def __init__(self, model, tokenizer, prefix: str = SELF_DEBIAS_PREFIX, decay: float = 50.0,
                 epsilon: float = 0.01):
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("prefix must be a non-empty text that describes the bias to avoid")
        self.decay = check_number(decay, "decay (λ of Schick et al.)", 0)
        self.epsilon = check_number(epsilon, "epsilon (the least factor a token's probability keeps)", 0, 1,
                                    low_open=True)
        self.model, self.tokenizer = model, tokenizer
        self.prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        self.pad_id = pad_id_of(tokenizer)
        self.reset()

    def reset(self) -> None:
        """Forget the running batch and the statistics."""
        self._batch = _BatchTracker()
        self._cache = None
        self._steps = 0
        self._kl_sum = 0.0

    def stats(self) -> dict:
        """Steps processed and mean KL(q‖p) per step."""
        return {"steps": self._steps, "mean_kl": self._kl_sum / self._steps if self._steps else 0.0}

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        device = scores.device
        if self._batch.is_new(input_ids):
            self._batch.start(input_ids)
            rows = []
            for row in input_ids.tolist():
                # Drop the prompt's left padding, put the prefix in front, pad again on the left.
                start = 0
                while start < len(row) - 1 and row[start] == self.pad_id:
                    start += 1
                rows.append(self.prefix_ids + row[start:])
            ids, mask = pad_batch(rows, self.pad_id, side="left")
            self._mask = mask.to(device)
            positions = (self._mask.cumsum(-1) - 1).clamp(min=0)
            biased, self._cache = forward_with_cache(self.model, ids.to(device), self._mask, positions)
        else:
            # Later steps feed only the new tokens; the prefixed history is in the cache.
            new = input_ids[:, self._batch.width:]
            self._mask = torch.cat([self._mask, torch.ones_like(new)], -1)
            positions = self._mask.sum(-1, keepdim=True) - 1 - torch.arange(new.shape[1] - 1, -1, -1, device=device)
            biased, self._cache = forward_with_cache(self.model, new, self._mask, positions, self._cache)
        self._batch.step(input_ids)
        logp = F.log_softmax(scores.float(), -1)
        logp_bias = F.log_softmax(biased, -1)
        gap = (logp_bias.exp() - logp.exp()).clamp(min=0)
        log_alpha = (-self.decay * gap).clamp(min=math.log(self.epsilon))
        out = logp + log_alpha
        q = F.log_softmax(out, -1)
        kl = (q.exp() * (q - logp)).nan_to_num(0.0).sum(-1)
        self._steps += input_ids.shape[0]
        self._kl_sum += float(kl.sum())
        return out.to(scores.dtype)
