"""Language-model utilities: log-probabilities, cross-entropy, perplexity and a readable generation loop.

Taught in ``notebooks/03_pretraining_loss.ipynb`` (log-probs, loss, perplexity) and
``notebooks/04_generate.ipynb`` (the generation loop). Every function is batched and padding aware:
texts of different lengths are stacked with the tokenizer's pad token (:func:`pad_batch`, the package's one
padding helper) and the attention mask keeps pad positions out of both the model's attention and the averages.
A text longer than the model's context is scored with a sliding window, as in transformers' perplexity guide.
"""
from __future__ import annotations

import inspect
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checks import check_number, check_positive_int, check_texts


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token-id lists of different lengths into ``(ids, attention_mask)``, padding on ``side``.

    ``side="right"`` keeps positions 0..n-1 for the real tokens (simplest for scoring); ``side="left"`` puts
    every row's last real token in the last column (what a causal model continues from when generating).
    Example: ``pad_batch([[5, 6, 7], [8]], pad_id=0)`` → ids ``[[5, 6, 7], [8, 0, 0]]``, mask ``[[1, 1, 1], [1, 0, 0]]``.
    The package's one padding helper (lm, metrics, gates, decoding use it).
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    sequences = [list(s) for s in sequences]
    if not sequences or any(not s for s in sequences):
        raise ValueError("pad_batch needs at least one sequence, and every sequence needs at least one token")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        cols = slice(0, len(seq)) if side == "right" else slice(width - len(seq), width)
        ids[row, cols] = torch.tensor(seq, dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


def pad_id_of(tokenizer) -> int:
    """The id used for padding: the tokenizer's pad token, else its EOS token (SmolLM2 has both, the same)."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    raise ValueError("the tokenizer has neither a pad nor an EOS token; set tokenizer.pad_token first")


def forward_with_cache(model, input_ids, attention_mask, position_ids, cache=None):
    """One forward pass that uses and returns the KV cache: ``(logits of the last position, new cache)``.

    transformers 5 calls the argument ``cache`` (4.x: ``past_key_values``); this is the package's one place that
    knows, used by :func:`generate_manual` and :class:`debias_utils.decoding.SelfDebiasProcessor`.
    Example: ``logits, cache = forward_with_cache(model, ids, mask, positions)``.
    Used by :func:`generate_manual` and the Self-Debias processor.
    """
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    extra = {name: cache} if cache is not None else {}
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True,
                **extra)
    # Read "cache" first: asking a transformers-5 output for "past_key_values" logs a deprecation warning.
    new_cache = out["cache"] if "cache" in out else out.get("past_key_values")
    return out.logits[:, -1, :].float(), new_cache


def context_length(model) -> int | None:
    """The longest sequence the model was built for (``config.max_position_embeddings``), or None if unknown."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def document_start_id(tokenizer) -> int:
    """The token that separates documents in pretraining, used as context for a text's first token.

    SmolLM2 (like GPT-2 and Qwen) was pretrained on documents joined by ``<|endoftext|>``; its BOS token
    ``<|im_start|>`` belongs to the chat format and makes the first token of plain text ~7x less likely on
    average (1.95 nats over the 188 corpus paragraphs; measured in ``notebooks/03_pretraining_loss.ipynb``).
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
def _window_logprobs(model, seq: list[int], window: int, stride: int, device) -> torch.Tensor:
    """``log p(x_t | x_<t)`` for t = 1..n-1 of one sequence longer than the model's context.

    Windows of ``window`` tokens start every ``stride`` tokens; each token is scored once, in the first window
    that reaches it, with at least ``window - stride`` tokens of context (transformers' perplexity guide).
    """
    out = torch.empty(len(seq) - 1, dtype=torch.float64)
    done, begin = 1, 0          # tokens 1..done-1 are scored
    while done < len(seq):
        end = min(begin + window, len(seq))
        ids = torch.tensor([seq[begin:end]], device=device)
        logits = model(input_ids=ids).logits[0, :-1].float()
        logp = F.log_softmax(logits, dim=-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        out[done - 1:end - 1] = logp[done - begin - 1:].double().cpu()
        done, begin = end, begin + stride
    return out


@torch.no_grad()
def token_logprobs(model, tokenizer, texts: Sequence[str], prefixes: Sequence[str] | None = None,
                   batch_size: int = 16, progress: bool = False, stride: int | None = None) -> list[np.ndarray]:
    """Log-probability of every token of each text, ``log p(x_t | x_<t)``, as a list of arrays.

    ``prefixes`` (optional, one per text) are conditioned on but not scored: ``token_logprobs(m, t,
    [" Paris."], ["The capital of France is"])`` scores only the tokens of " Paris.".
    A sequence longer than the model's context (``config.max_position_embeddings``) is scored with a sliding
    window that moves by ``stride`` tokens (default: half the context), so every token keeps at least half a
    context of history instead of positions the model never saw.
    Taught in ``notebooks/04_generate.ipynb``.
    """
    texts = check_texts(texts)
    batch_size = check_positive_int(batch_size, "batch_size")
    if prefixes is None:
        prefixes = [""] * len(texts)
    prefixes = check_texts(prefixes, "prefixes")
    if len(prefixes) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(prefixes)} prefixes; pass one prefix per text")
    start_id = document_start_id(tokenizer)
    encoded = [_encode_pair(tokenizer, p, t, start_id) for p, t in zip(prefixes, texts)]
    window = context_length(model)
    if stride is None:
        stride = max(1, window // 2) if window else 1
    elif window and not 1 <= stride < window:
        raise ValueError(f"stride must be between 1 and {window - 1} (the context minus one), got {stride}")
    device = next(model.parameters()).device
    results: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
    long = [i for i, (seq, _) in enumerate(encoded) if window and len(seq) > window]
    for i in long:
        seq, n_context = encoded[i]
        results[i] = _window_logprobs(model, seq, window, stride, device)[n_context - 1:].numpy()
    # Sort by length so each batch pads as little as possible; results go back in input order.
    order = sorted((i for i in range(len(texts)) if i not in set(long)), key=lambda i: len(encoded[i][0]))
    for begin in tqdm(range(0, len(order), batch_size), disable=not progress, desc="log-probs"):
        rows = order[begin:begin + batch_size]
        ids, mask = pad_batch([encoded[i][0] for i in rows], pad_id_of(tokenizer), side="right")
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

    Used for CrowS-Pairs and pronoun probabilities in ``notebooks/06_bias_metrics.ipynb``.
    Example: ``sequence_logprob(m, t, [" Paris", " Rome"], ["The capital of France is"] * 2)``.
    """
    return np.array([lp.sum() for lp in token_logprobs(model, tokenizer, texts, prefixes, batch_size, progress)])


def mean_cross_entropy(model, tokenizer, texts: Sequence[str], prefixes: Sequence[str] | None = None,
                       batch_size: int = 16, progress: bool = False) -> float:
    """Mean next-token cross-entropy in nats over *all scored tokens* of all texts (token-weighted).

    This is the pretraining loss of ``notebooks/03_pretraining_loss.ipynb``; long texts weigh more than
    short ones, exactly as when the texts are concatenated into one evaluation stream.
    """
    texts = check_texts(texts)
    logps = token_logprobs(model, tokenizer, texts, prefixes, batch_size, progress)
    total = sum(float(lp.sum()) for lp in logps)
    count = sum(len(lp) for lp in logps)
    return -total / count


def perplexity(model, tokenizer, texts: Sequence[str], prefixes: Sequence[str] | None = None,
               batch_size: int = 16, per_text: bool = False, progress: bool = False):
    """Perplexity = exp(mean cross-entropy): the model's effective number of choices per token.

    ``per_text=True`` returns one perplexity per text (numpy array) instead of the pooled value.
    Taught in ``notebooks/03_pretraining_loss.ipynb``.
    """
    if per_text:
        logps = token_logprobs(model, tokenizer, texts, prefixes, batch_size, progress)
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
    Taught in ``notebooks/04_generate.ipynb``.
    """
    temperature = check_number(temperature, "temperature (for greedy decoding use do_sample=False)", 0,
                               low_open=True)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"top_k must be a whole number >= 0 (0 or None: no top-k), got {top_k!r}")
    if top_p is not None:
        top_p = check_number(top_p, "top_p (the nucleus' probability mass)", 0, 1, low_open=True)
    scores = logits / temperature if temperature != 1.0 else logits
    if top_k:
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
    Taught in ``notebooks/04_generate.ipynb``.
    """
    prompts = check_texts(prompts, "prompts")
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
    if do_sample:
        filter_logits(torch.zeros(1, 2), temperature, top_k, top_p)   # the same checks, before any work
    device = next(model.parameters()).device
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    eos_id = tokenizer.eos_token_id
    pad_id = pad_id_of(tokenizer)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
    past = None
    for _ in range(max_new_tokens):
        # With left padding the real tokens of each row start at different columns; positions count
        # real tokens only (pad positions get a dummy 1, they are masked anyway).
        position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
        if use_cache:
            # The first step reads the whole prompt; later steps only the new token, the rest is in the cache.
            step = slice(None) if past is None else slice(-1, None)
            logits, past = forward_with_cache(model, input_ids[:, step], attention_mask, position_ids[:, step], past)
        else:
            out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        use_cache=False)
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
