"""Language-model utilities: log-probabilities, cross-entropy, perplexity and a readable generation loop.

Taught in ``notebooks/01_pretraining_loss.ipynb`` (log-probs, loss, perplexity) and
``notebooks/03_generate.ipynb`` (the generation loop). Every function is batched and padding aware:
texts of different lengths are stacked with the tokenizer's pad token and the attention mask keeps
pad positions out of both the model's attention and the averages.
"""
from __future__ import annotations

import inspect
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def _check_texts(texts, what: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a list of strings, not one string; wrap it: [{texts[:30]!r}]")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{what}[{bad[0]}] is {type(texts[bad[0]]).__name__}, expected str")
    return texts


def document_start_id(tokenizer) -> int:
    """The token that separates documents in pretraining, used as context for a text's first token.

    SmolLM2 (like GPT-2 and Qwen) was pretrained on documents joined by ``<|endoftext|>``; its BOS token
    ``<|im_start|>`` belongs to the chat format and makes the first token of plain text ~7x less likely on
    average (1.95 nats over the 188 corpus paragraphs; measured in ``notebooks/01_pretraining_loss.ipynb``).
    Other models fall back to BOS, then EOS.
    """
    # Look the token up in the vocabulary itself: SmolLM2's GGUF also names <|endoftext|> its unk token,
    # so convert_tokens_to_ids cannot tell "present" from "unknown".
    vocab_id = tokenizer.get_vocab().get("<|endoftext|>")
    if vocab_id is not None:
        return vocab_id
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    return tokenizer.eos_token_id


def _encode_pair(tokenizer, prefix: str, text: str, start_id: int) -> tuple[list[int], int]:
    """Token ids of ``prefix + text`` and how many of them belong to the prefix.

    The prefix and the text are tokenised separately and concatenated, so the boundary is exact (BPE
    would otherwise be free to merge across it). A BOS token is added when the tokenizer defines one
    and the sequence would otherwise have no context for its first token.
    """
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    text_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not text_ids:
        raise ValueError(f"text {text!r} has no tokens to score")
    # The first token has no left context; condition it on the document-start token so it is scored too.
    start = [start_id]
    ids = start + prefix_ids + text_ids
    return ids, len(start) + len(prefix_ids)


@torch.no_grad()
def token_logprobs(model, tokenizer, texts: Sequence[str], prefixes: Sequence[str] | None = None,
                   batch_size: int = 16, progress: bool = False) -> list[np.ndarray]:
    """Log-probability of every token of each text, ``log p(x_t | x_<t)``, as a list of arrays.

    ``prefixes`` (optional, one per text) are conditioned on but not scored: ``token_logprobs(m, t,
    [" Paris."], ["The capital of France is"])`` scores only the tokens of " Paris.".
    Taught in ``notebooks/01_pretraining_loss.ipynb``.
    """
    texts = _check_texts(texts)
    if prefixes is None:
        prefixes = [""] * len(texts)
    prefixes = _check_texts(prefixes, "prefixes")
    if len(prefixes) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(prefixes)} prefixes; pass one prefix per text")
    start_id = document_start_id(tokenizer)
    encoded = [_encode_pair(tokenizer, p, t, start_id) for p, t in zip(prefixes, texts)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    results: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
    # Sort by length so each batch pads as little as possible; results go back in input order.
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i][0]))
    for start in tqdm(range(0, len(order), batch_size), disable=not progress, desc="log-probs"):
        rows = order[start:start + batch_size]
        width = max(len(encoded[i][0]) for i in rows)
        # Right padding is simplest for scoring: positions stay 0..n-1 for the real tokens.
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            seq = encoded[i][0]
            ids[r, :len(seq)] = torch.tensor(seq)
            mask[r, :len(seq)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        # Position t predicts token t+1: shift logits left and targets right by one.
        logp = F.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        for r, i in enumerate(rows):
            seq, n_context = encoded[i]
            results[i] = logp[r, n_context - 1:len(seq) - 1].cpu().numpy().astype(np.float64)
    return results


def sequence_logprob(model, tokenizer, texts: Sequence[str], prefixes: Sequence[str] | None = None,
                     batch_size: int = 16, progress: bool = False) -> np.ndarray:
    """Total log-probability ``log p(text | prefix)`` of each text (sum over its tokens).

    Used for CrowS-Pairs and pronoun probabilities in ``notebooks/05_bias_metrics.ipynb``.
    Example: ``sequence_logprob(m, t, [" Paris", " Rome"], ["The capital of France is"] * 2)``.
    """
    return np.array([lp.sum() for lp in token_logprobs(model, tokenizer, texts, prefixes, batch_size, progress)])


def mean_cross_entropy(model, tokenizer, texts: Sequence[str], prefixes: Sequence[str] | None = None,
                       batch_size: int = 16, progress: bool = False) -> float:
    """Mean next-token cross-entropy in nats over *all scored tokens* of all texts (token-weighted).

    This is the pretraining loss of ``notebooks/01_pretraining_loss.ipynb``; long texts weigh more than
    short ones, exactly as when the texts are concatenated into one evaluation stream.
    """
    texts = _check_texts(texts)
    if not texts:
        raise ValueError("mean_cross_entropy needs at least one text")
    logps = token_logprobs(model, tokenizer, texts, prefixes, batch_size, progress)
    total = sum(float(lp.sum()) for lp in logps)
    count = sum(len(lp) for lp in logps)
    return -total / count


def perplexity(model, tokenizer, texts: Sequence[str], prefixes: Sequence[str] | None = None,
               batch_size: int = 16, per_text: bool = False, progress: bool = False):
    """Perplexity = exp(mean cross-entropy): the model's effective number of choices per token.

    ``per_text=True`` returns one perplexity per text (numpy array) instead of the pooled value.
    Taught in ``notebooks/01_pretraining_loss.ipynb``.
    """
    if per_text:
        logps = token_logprobs(model, tokenizer, _check_texts(texts), prefixes, batch_size, progress)
        return np.array([math.exp(-lp.mean()) for lp in logps])
    return math.exp(mean_cross_entropy(model, tokenizer, texts, prefixes, batch_size, progress))


# ----------------------------------------------------------------------------------------------------
# The generation loop, written out. It makes the same choices, in the same order, as
# ``model.generate`` so that it produces identical tokens (greedy, and sampling with the same seed).
# ----------------------------------------------------------------------------------------------------

def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Temperature, then top-k, then top-p (nucleus) on a ``(batch, vocab)`` tensor of logits.

    Removed tokens get ``-inf`` so that softmax gives them probability 0. The order and the tie rules
    follow transformers' ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and ``TopPLogitsWarper``.
    Taught in ``notebooks/03_generate.ipynb``.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0; for greedy decoding use do_sample=False")
    scores = logits / temperature if temperature != 1.0 else logits
    if top_k is not None and top_k > 0:
        k = min(top_k, scores.size(-1))
        kth_best = torch.topk(scores, k).values[..., -1, None]
        scores = scores.masked_fill(scores < kth_best, -float("inf"))
    if top_p is not None and top_p < 1.0:
        # Sort ascending, drop the low tail whose cumulative probability is <= 1 - top_p; always keep
        # the most likely token.
        sorted_logits, sorted_idx = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - top_p)
        remove_sorted[..., -1:] = False
        remove = remove_sorted.scatter(1, sorted_idx, remove_sorted)
        scores = scores.masked_fill(remove, -float("inf"))
    return scores


@torch.no_grad()
def generate_manual(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 20,
                    do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, use_cache: bool = True, logits_processor=None,
                    stop_at_eos: bool = True) -> torch.Tensor:
    """Generate continuations one token at a time; returns ``(batch, prompt_len + new)`` token ids.

    Each step: logits of the last position → (optional ``logits_processor``) → temperature / top-k /
    top-p → probabilities → pick a token (argmax, or ``torch.multinomial``) → append → repeat.
    With ``use_cache=True`` only the new token is fed to the model; the keys and values of earlier tokens
    come from the KV cache. Rows that produced EOS are padded afterwards, as ``model.generate`` does.
    Seed with :func:`debias_utils.set_seed` right before calling it to compare with ``model.generate``.
    Taught in ``notebooks/03_generate.ipynb``.
    """
    prompts = _check_texts(prompts, "prompts")
    if not prompts:
        raise ValueError("prompts is empty; pass at least one prompt")
    device = next(model.parameters()).device
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
    past = None
    # transformers 5 renamed ``past_key_values`` to ``cache``; accept both so older versions still work.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    for _ in range(max_new_tokens):
        # With left padding the real tokens of each row start at different columns; positions count
        # real tokens only (pad positions get a dummy 1, they are masked anyway).
        position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
        if use_cache and past is not None:
            out = model(input_ids=input_ids[:, -1:], attention_mask=attention_mask,
                        position_ids=position_ids[:, -1:], use_cache=True, **{cache_arg: past})
        else:
            out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        use_cache=use_cache)
        past = (out["cache"] if "cache" in out else out.get("past_key_values")) if use_cache else None
        logits = out.logits[:, -1, :].float()
        if logits_processor is not None:
            logits = logits_processor(input_ids, logits)
        if do_sample:
            scores = filter_logits(logits, temperature, top_k, top_p)
            next_token = torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)
        else:
            next_token = logits.argmax(dim=-1)
        if stop_at_eos and eos_id is not None:
            next_token = torch.where(finished, torch.full_like(next_token, pad_id), next_token)
            finished |= next_token == eos_id
        input_ids = torch.cat([input_ids, next_token[:, None]], dim=-1)
        attention_mask = torch.cat([attention_mask, torch.ones_like(next_token[:, None])], dim=-1)
        if stop_at_eos and bool(finished.all()):
            break
    return input_ids
