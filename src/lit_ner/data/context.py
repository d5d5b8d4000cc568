"""Retrieved context (`--data.retrieved_context K`): each sentence is given its K nearest training
sentences as extra input that carries no labels, an offline stand-in for CL-KL's retrieved web
context (Wang et al., ACL 2021), where a search engine's results for the sentence are appended.

Nearness is the cosine of the encoder's own sentence embedding before fine-tuning: the mean of its
last hidden states over the sentence's subwords (what sentence-transformers models such as
all-MiniLM-L6-v2 and all-mpnet-base-v2 are trained for). A training sentence never gets itself,
and no sentence gets a copy of its own words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lit_ner.hub import hub_errors, resolve_name_or_path


@torch.inference_mode()
def sentence_embeddings(
    encoder: Any, tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int, batch_size: int = 64
) -> torch.Tensor:
    """`(sentences, hidden)`: each sentence's mean last hidden state over its first `max_length`
    positions, unit length."""
    encoder.eval()
    out = []
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # batches of like lengths
    for first in range(0, len(order), batch_size):
        rows = [list(sentences[i]) or [""] for i in order[first : first + batch_size]]
        inputs = tokenizer(
            rows, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
            return_tensors="pt",
        )  # fmt: skip
        hidden = encoder(**{k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")})
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        mean = (hidden.last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)
        out.append(torch.nn.functional.normalize(mean, dim=-1))
    embeddings = torch.cat(out) if out else torch.zeros(0, 1)
    result = torch.empty_like(embeddings)
    result[torch.tensor(order, dtype=torch.long)] = embeddings
    return result


def nearest_sentences(
    queries: torch.Tensor,
    pool: torch.Tensor,
    k: int,
    query_words: Sequence[Sequence[str]],
    pool_words: Sequence[Sequence[str]],
    same_split: bool,
) -> list[list[int]]:
    """Per query, the indices of its `k` nearest pool sentences by cosine, nearest first: never
    itself (`same_split`: queries and pool are one list) and never a copy of its words."""
    extra = min(len(pool_words), k + 8)  # room to skip copies
    ranked: list[list[int]] = []
    for first in range(0, len(queries), 1024):  # in chunks: never a queries x pool matrix at once
        similarities = queries[first : first + 1024] @ pool.T
        if same_split:
            rows = torch.arange(len(similarities))
            similarities[rows, rows + first] = -2.0
        ranked += similarities.topk(extra, dim=1).indices.tolist() if extra else [[] for _ in similarities]
    out = []
    for i, candidates in enumerate(ranked):
        own = list(query_words[i])
        chosen = [j for j in candidates if not (same_split and j == i) and list(pool_words[j]) != own]
        out.append(chosen[:k])
    return out


def retrieved_contexts(
    encoder_name: str,
    tokenizer: Any,
    splits: dict[str, Sequence[Sequence[str]]],
    k: int,
    max_length: int,
    trust_remote_code: bool = False,
) -> dict[str, list[list[str]]]:
    """For each split's sentences (`splits` has the train split, the pool), the words of their `k`
    nearest training sentences, nearest first, joined in one list (the context each is given)."""
    from transformers import AutoModel

    with hub_errors(f"encoder '{encoder_name}' (for data.retrieved_context)", encoder_name):
        encoder = AutoModel.from_pretrained(
            resolve_name_or_path(encoder_name), trust_remote_code=trust_remote_code
        )
    train = splits["train"]
    pool = sentence_embeddings(encoder, tokenizer, train, max_length)
    contexts = {}
    for name, sentences in splits.items():
        queries = pool if name == "train" else sentence_embeddings(encoder, tokenizer, sentences, max_length)
        nearest = nearest_sentences(queries, pool, k, sentences, train, same_split=name == "train")
        contexts[name] = [[word for j in row for word in train[j]] for row in nearest]
    return contexts
