"""WNUT-17 (or any word-level NER data, in any tag scheme) as a LightningDataModule: the splits
from their source (`data.sources`), their tags rewritten in BIO and checked, tokenization and
alignment (`data.alignment`), caching, sampling (`data.sampling`) and augmentation
(`data.augment`). Whatever the source, each split is read once into words and string tags;
everything else starts from there.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from lit_ner.data.alignment import (
    TokenClassificationCollator,
    alignment_code,
    alignment_report,
    continuation_label_ids,
    tokenize_and_align,
)
from lit_ner.data.augment import Augmentation, MentionReplacedSet
from lit_ner.data.sampling import LengthGroupedSampler, SortedSampler
from lit_ner.data.sources import (
    check_tags,
    normalise_tags,
    read_files,
    read_hub_splits,
    split_files,
    training_labels,
)
from lit_ner.errors import LitNerError
from lit_ner.formats import SPLITS, Split
from lit_ner.hub import load_tokenizer


class NERDataModule(L.LightningDataModule):
    """Word-level NER data, tokenized and aligned for a transformer token classifier.

    Args:
        dataset_name: Hub data set id (or a folder holding one: parquet, arrow, JSON or CSV files,
            or `save_to_disk`'s); used when no files and no WNUT-17 directory are given. Null (the
            default): no Hub (a WNUT-17 directory, else the release shipped inside the package).
        dataset_revision: Hub revision, when set. Data sets that were loading scripts (WNUT-17's
            `leondz/wnut_17`, `conll2003`, ...) no longer load since datasets 4; their parquet
            conversion at `refs/convert/parquet` does (configs/wnut.yaml sets it for WNUT-17).
        dataset_config_name: Hub data set configuration, if it has several (wikiann's language).
        data_dir: directory with the official WNUT-17 release files (plain or gzipped). Defaults
            to `$WNUT17_DIR` when `dataset_name` is WNUT-17 or null; with `dataset_name` null and
            no `$WNUT17_DIR`, the copy inside the package.
        train_file: a file for the train split (overrides the other sources): CoNLL, JSONL of
            tokens and tags, or span annotations as doccano, Label Studio or Prodigy export them
            (see `lit_ner.annotations`).
        validation_file: the same for the validation split.
        test_file: the same for the test split.
        tokens_column: the Hub data set's column of word lists (default: `tokens`, else `words`).
        tags_column: the Hub data set's column of tags: `ClassLabel` ids, integer ids or strings
            (default: the first of `ner_tags`, `tags`, `ner`, `labels`, `ner_labels`).
        tag_scheme: the data's tag scheme, `auto` (detected from every split's tags), `IOB1`,
            `IOB2`/`BIO`, `IOBES`/`BIOES`, `BILOU` or `IO` (`lit_ner.tag_schemes`). Tags are read
            into entities and rewritten in BIO, which lit_ner trains in (one line says what was
            rewritten); predictions files are written back in the data's scheme.
        label_map: entity types renamed, merged or dropped in every split before the label set
            is built: `{PERSON: PER, MISC: null}` (counted in one line).
        label_names: the label set lit_ner trains with, in id order (BIO). By default it comes
            from the data: the Hub data set's ClassLabel names (when BIO), WNUT-17's order for
            the WNUT-17 files, else `O` and `B-`/`I-` of every entity type of the train split,
            sorted. For a Hub data set of plain integer tags, the tag names in id order or a
            label2id mapping (`{O: 0, B-PER: 1, ...}`). Linked to the model.
        tokenizer_name_or_path: linked from `model.model_name_or_path`.
        max_length: subword positions per example, special tokens included; defaults to the
            tokenizer's maximum. A longer sentence is split into overlapping windows (counted and
            reported), never truncated.
        stride: subword positions that consecutive windows of a long sentence share; each word
            is trained on and scored in the window where it sits farther from the edge.
        strict_bio: refuse data with ill-formed tags (in BIO an I- tag after `O` or after
            another type; in IOBES/BILOU a chunk opened or closed out of turn), from files or the
            Hub, instead of reading them as seqeval's default mode does (counted and reported).
        label_all_tokens: label continuation subwords with their word's I- tag instead of -100.
        train_with_validation: train on the train and validation splits together (Flair's
            `train_with_dev`): a final fit for settings already chosen on validation, never a way
            to choose them, since validation scores are then no longer held out; the CLI's `fit`
            keeps and tests the last epoch's checkpoint instead of the best by validation F1
            (from Python, keep the last epoch yourself: `ModelCheckpoint(monitor=None)`).
        retrieved_context: give each sentence (of every split) its K nearest training sentences
            as a second segment of context that carries no labels, by the cosine of the
            encoder's mean-pooled embedding before fine-tuning (`lit_ner.data.context`; an
            offline stand-in for CL-KL's web-search context); cut to `max_length`. 0: none.
            Tagging text (`lit_ner tag`, exports) retrieves no context.
        augment: training-data augmentation, redrawn every epoch from the seed, counted in the logs
            (`lit_ner.data.augment.Augmentation`; validation, test and predict are never touched).
        batch_size: training sentences per batch (per device under DDP).
        group_by_length: batch training sentences of similar length together (shuffled chunks
            sorted by length, batches shuffled; see `LengthGroupedSampler`), which cuts padding;
            off: random batches. Validation, test and predict batches are always sorted by length.
        group_size: optimizer steps per length-sorted chunk; larger pads less but makes the
            batches of a chunk less random.
        eval_batch_size: sentences per batch for validation, test and predict (default:
            `batch_size`).
        pad_to_multiple_of: round each batch's padded length up to a multiple of this.
        num_workers: DataLoader worker processes.
        predict_split: the split `predict` runs over.
        cache_dir: where tokenized splits are cached (default: the datasets cache).
        trust_remote_code: linked from `model.trust_remote_code`: run code a Hub tokenizer ships.
    """

    def __init__(
        self,
        dataset_name: str | None = None,
        dataset_revision: str | None = None,
        dataset_config_name: str | None = None,
        data_dir: str | None = None,
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        tokens_column: str | None = None,
        tags_column: str | None = None,
        tag_scheme: Literal["auto", "IOB1", "IOB2", "BIO", "IOBES", "BIOES", "BILOU", "IO"] = "auto",
        label_map: dict[str, str | None] | None = None,
        label_names: list[str] | dict[str, int] | None = None,
        tokenizer_name_or_path: str = "distilbert/distilbert-base-uncased",
        max_length: int | None = None,
        stride: int = 128,
        strict_bio: bool = False,
        label_all_tokens: bool = False,
        train_with_validation: bool = False,
        retrieved_context: int = 0,
        augment: Augmentation = Augmentation(),  # a frozen default, never mutated
        batch_size: int = 16,
        group_by_length: bool = True,
        group_size: int = 50,
        eval_batch_size: int | None = None,
        pad_to_multiple_of: int | None = None,
        num_workers: int = 0,
        predict_split: str = "test",
        cache_dir: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        # label_names is resolved from the data and recorded once, in the model's hparams (the
        # linked copy); Lightning refuses to log two different values under one key.
        self.save_hyperparameters(ignore=["label_names", "augment"])
        if retrieved_context < 0:
            raise LitNerError(
                f"data.retrieved_context must be a number of sentences >= 0, not {retrieved_context}"
            )
        augment = Augmentation.checked(augment)
        self.hparams["augment"] = dataclasses.asdict(augment)  # plain values in checkpoints and cards
        self.augment = augment
        self._augmented: MentionReplacedSet | None = None
        self._contexts: dict[str, list[list[str]]] | None = None
        self._tokenizer = None
        self._seed: int | None = None
        # (epoch, batches done, processes) from a checkpoint
        self._resume: tuple[int, int, int] | None = None
        self.datasets: dict[str, Any] = {}
        self._example_lengths: dict[str, list[int]] = {}
        # A label2id mapping names a Hub data set's integer tags; a list is the label set itself.
        self._given_labels = label_names
        given = list(label_names) if isinstance(label_names, list) and label_names else None
        # Another scheme's names (a Hub data set's integer tags in IOBES) train as their BIO set.
        self._label_names = training_labels({}, {}, given, None, "", False) if given else None
        self._labels_from_data = self._label_names is None
        self._hub_label_names: list[str] | None = None
        self._tag_scheme: str | None = None
        self.files = split_files(train_file, validation_file, test_file, data_dir, dataset_name)
        self._splits: dict[str, Split] | None = None
        if self.files:
            # Files are small and their label set is needed before the model exists: read now,
            # so a bad file stops the run before anything is built.
            self._splits = self._normalised(read_files(self.files))

    # Where the data comes from, read once into words and string tags per split.

    @property
    def splits(self) -> dict[str, Split]:
        """Every split's words and string tags (and, from files, each word's line)."""
        if self._splits is None:
            self._splits = self._normalised(self._read_hub())
        return self._splits

    def _read_hub(self) -> dict[str, Split]:
        hp = self.hparams
        splits, names = read_hub_splits(
            hp.dataset_name, hp.dataset_config_name, hp.dataset_revision, hp.tokens_column, hp.tags_column,
            self._given_labels,
        )  # fmt: skip
        if names is not None:
            self._hub_label_names = names
        return splits

    def _normalised(self, splits: dict[str, Split]) -> dict[str, Split]:
        """The splits' tags in BIO, through the label map (`sources.normalise_tags`), said in one
        line each; then the label set, and every tag checked against it."""
        hp = self.hparams
        self._tag_scheme, lines = normalise_tags(
            splits, self.files, hp.dataset_name, hp.tag_scheme, hp.label_map, hp.strict_bio, rank_zero_warn
        )
        for line in lines:
            rank_zero_info(line)
        self._splits = splits
        self._check_tags()
        if hp.train_with_validation:
            if "train" not in splits or "validation" not in splits:
                raise LitNerError("data.train_with_validation needs a train and a validation split")
            train, validation = splits["train"], splits["validation"]
            n, m = len(train["tokens"]), len(validation["tokens"])
            # After the checks, so that a bad tag is reported at its own file's line.
            splits["train"] = {key: train[key] + validation[key] for key in train if key in validation}
            rank_zero_info(
                f"data.train_with_validation: training on train ({n:,}) + validation ({m:,}) = {n + m:,} "
                "sentences; validation scores are no longer held out, so fit keeps the last epoch"
            )
        return splits

    @property
    def tag_scheme(self) -> str:
        """The data's own tag scheme (`lit_ner.tag_schemes`), as set or detected; predictions files
        are written in it."""
        self.splits
        assert self._tag_scheme is not None
        return self._tag_scheme

    def get_split(self, split: str) -> Split:
        if split not in self.splits:
            if self.files:
                raise LitNerError(f"no {split} split: set --data.{split}_file")
            raise LitNerError(
                f"data set '{self.hparams.dataset_name}' has no {split} split (it has {list(self.splits)})"
            )
        return self.splits[split]

    def has_split(self, split: str) -> bool:
        return split in self.splits

    def words(self, split: str) -> list[list[str]]:
        """The words of each sentence of a split, in sentence-id order."""
        return self.get_split(split)["tokens"]

    def tags(self, split: str) -> list[list[str]]:
        """The gold tags of each sentence of a split, in sentence-id order."""
        return self.get_split(split)["tags"]

    @property
    def label_names(self) -> list[str]:
        """The label set in id order, BIO (linked to `model.label_names`): see `label_names` in the
        class docstring and `sources.training_labels`."""
        if self._label_names is None:
            splits, scheme = self.splits, self.tag_scheme
            self._label_names = training_labels(
                splits, self.files, None, self._hub_label_names, scheme, bool(self.hparams.label_map)
            )
        return self._label_names

    @property
    def label_counts(self) -> dict[str, int] | None:
        """How often each label tags a training word (None without a train split): linked to
        `model.label_counts`, which weighs the training loss by them (`model.class_weights`). None
        too while a Hub data set is still unread: the link must not read it in every process
        before `prepare_data` (the model then asks in `setup`, if it weighs by them)."""
        if self._splits is None or not self.has_split("train"):
            return None
        return dict(Counter(tag for sentence in self.tags("train") for tag in sentence))

    def _check_tags(self) -> None:
        hp = self.hparams
        check_tags(
            self.splits, self.label_names, self.files, hp.dataset_name, self._labels_from_data, hp.strict_bio,
            rank_zero_warn,
        )  # fmt: skip

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(
                self.hparams.tokenizer_name_or_path, trust_remote_code=self.hparams.trust_remote_code
            )
        return self._tokenizer

    @property
    def max_length(self) -> int:
        """Subword positions per example: `max_length`, else the tokenizer's maximum."""
        max_length = self.hparams.max_length or self.tokenizer.model_max_length
        if max_length > 100_000:  # a tokenizer that does not know its model's limit
            raise LitNerError(
                f"tokenizer '{self.hparams.tokenizer_name_or_path}' states no maximum length; "
                "set --data.max_length to the model's position limit"
            )
        if max_length < 3 or self.hparams.stride < 0:
            raise LitNerError(f"max_length {max_length} and stride {self.hparams.stride}: too small to tag")
        return max_length

    # Lightning hooks.

    def prepare_data(self) -> None:
        # Runs on one process per node, first: a Hub data set and the tokenizer land in their caches
        # here once, before every process reads them (the label link has read the data already).
        self.splits
        self.tokenizer

    def setup(self, stage: str | None = None) -> None:
        needed = {
            "fit": ("train", "validation"),
            "validate": ("validation",),
            "test": ("test",),
            "predict": (self.hparams.predict_split,),
        }.get(stage or "", SPLITS)
        for split in needed:
            if split not in self.datasets:
                self.datasets[split] = self._tokenized(split)

    def _align(self, split: str) -> Any:
        """A split's sentences (`tokens`, tag-id `tags`, `sentence_id` columns) to model examples,
        as set up."""
        hp = self.hparams
        return partial(
            tokenize_and_align,
            tokenizer=self.tokenizer,
            max_length=self.max_length,
            continuation_ids=continuation_label_ids(self.label_names) if hp.label_all_tokens else None,
            stride=hp.stride,
            contexts=self.contexts(split) if hp.retrieved_context else None,
        )

    def contexts(self, split: str) -> list[list[str]]:
        """Each sentence's retrieved context (`retrieved_context`), by sentence id: the words of
        its nearest training sentences, computed once for every split."""
        if self._contexts is None:
            from lit_ner.data.context import retrieved_contexts

            hp = self.hparams
            if not self.has_split("train"):
                raise LitNerError(
                    "data.retrieved_context: the context is retrieved from the train split; give one"
                )
            splits = {name: self.words(name) for name in self.splits}
            self._contexts = retrieved_contexts(
                hp.tokenizer_name_or_path, self.tokenizer, splits, hp.retrieved_context, self.max_length,
                hp.trust_remote_code,
            )  # fmt: skip
            rank_zero_info(
                f"data.retrieved_context: each sentence is given its {hp.retrieved_context} nearest "
                "training sentences as unlabelled context, cut to data.max_length (a sentence that "
                "needs windows gets none)"
            )
        return self._contexts[split]

    def _tokenized(self, split: str) -> Any:
        import datasets
        from datasets.fingerprint import Hasher

        hp = self.hparams
        data = self.get_split(split)
        index = {name: i for i, name in enumerate(self.label_names)}
        # Each sentence's index rides along with it (and with its windows) into every batch: under
        # DDP the sampler repeats sentences to give every process as many, and scoring counts
        # each index once and joins a long sentence's windows back together.
        raw = datasets.Dataset.from_dict(
            {
                "tokens": data["tokens"],
                "tags": [[index[tag] for tag in sentence] for sentence in data["tags"]],
                "sentence_id": list(range(len(data["tags"]))),
            }
        )
        align = self._align(split)
        max_length, continuation = align.keywords["max_length"], align.keywords["continuation_ids"]
        # In-memory data sets are not cached by `datasets`; key the cache on the data and on
        # everything that shapes the encoding, the code included, so any change re-tokenizes.
        fingerprint = Hasher.hash(
            [
                raw["tokens"],
                raw["tags"],
                self.tokenizer,
                max_length,
                hp.stride,
                continuation,
                align.keywords["contexts"],
                alignment_code(),
            ]
        )
        cache_dir = Path(hp.cache_dir or datasets.config.HF_DATASETS_CACHE) / "lit_ner"
        cache_dir.mkdir(parents=True, exist_ok=True)
        tokenized = raw.map(
            align,
            batched=True,
            remove_columns=raw.column_names,
            cache_file_name=str(cache_dir / f"{split}-{fingerprint}.arrow"),
            new_fingerprint=fingerprint,
        )
        # What was windowed, and words without a subword: nothing is cut or dropped silently.
        info, warning = alignment_report(
            split, tokenized["n_windows"], tokenized["word_offset"], tokenized["unlabelled_words"],
            max_length, hp.stride,
        )  # fmt: skip
        rank_zero_info(info)
        if warning:
            rank_zero_warn(warning)
        contexts = align.keywords["contexts"]
        if contexts is not None:  # a sentence that needs windows, or has no neighbour, gets none
            whole = {s for s, n in zip(tokenized["sentence_id"], tokenized["n_windows"]) if n == 1}
            given = sum(1 for s in whole if contexts[s])
            rank_zero_info(f"{split}: retrieved context given to {given:,} of {len(contexts):,} sentences")
        return tokenized.remove_columns(["unlabelled_words"])

    def _lengths(self, split: str) -> list[int]:
        """Each example's number of subword positions (for grouping and sorting by length)."""
        import pyarrow.compute as pc

        if split not in self._example_lengths:
            input_ids = self.datasets[split].with_format("arrow")["input_ids"]
            self._example_lengths[split] = pc.list_value_length(input_ids).to_pylist()
        return self._example_lengths[split]

    def _world(self) -> tuple[int, int]:
        return (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)

    def _dataloader(self, split: str, dataset: Any = None, **loader: Any) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            self.datasets[split] if dataset is None else dataset,
            collate_fn=TokenClassificationCollator(self.tokenizer.pad_token_id, hp.pad_to_multiple_of),
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            # Its own generator (for worker seeds): creating an iterator then draws nothing from
            # torch's global RNG, which stays dropout's alone and resumes exactly.
            generator=torch.Generator().manual_seed(self.seed),
            **loader,
        )

    @property
    def seed(self) -> int:
        """The shuffling seed: the run's (`seed_everything`), kept in checkpoints for resuming."""
        if self._seed is None:
            self._seed = torch.initial_seed() % 2**63
        return self._seed

    def mention_replaced(self) -> MentionReplacedSet | None:
        """The training set redrawn every epoch (`augment.mention_replacement`), or None."""
        if not self.augment.mention_replacement:
            return None
        if self._augmented is None or self._augmented.seed != self.seed:
            train = self.get_split("train")
            self._augmented = MentionReplacedSet(
                train["tokens"], train["tags"], self.label_names, self._align("train"),
                self.augment.mention_replacement, self.seed,
            )  # fmt: skip
        return self._augmented

    def training_words(self, epoch: int) -> list[list[str]]:
        """The words of epoch `epoch`'s training sentences, by sentence id: the train split's, with
        the epoch's mention-replaced sentences in place (what a teacher reads, `model.teacher`)."""
        augmented = self.mention_replaced()
        return self.words("train") if augmented is None else augmented.words(epoch)

    def augmentation_counts(self, epoch: int) -> dict[str, int] | None:
        """What augmentation did to epoch `epoch`'s training data (`MentionReplacedSet.draw`)."""
        augmented = self.mention_replaced()
        return None if augmented is None else augmented.draw(epoch)[1]

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        world_size, rank = self._world()
        augmented = self.mention_replaced()
        sampler = LengthGroupedSampler(
            self._lengths("train"),
            hp.batch_size,
            world_size,
            rank,
            self.seed,
            group_by_length=hp.group_by_length,
            group_size=hp.group_size,
            # A redrawn sentence is batched by its original length: near enough for grouping.
            epoch_indices=augmented is not None,
        )
        if world_size > 1:
            rank_zero_info(
                f"effective batch: {hp.batch_size} sentences x {world_size} processes = "
                f"{hp.batch_size * world_size} per optimizer step ({len(sampler)} steps per epoch)"
            )
        if self._resume is not None:
            epoch, batches_done, saved_world_size = self._resume
            if saved_world_size == world_size:
                sampler.resume_at(epoch, batches_done)
                # Lightning warns that a mid-epoch resume of a DataLoader without a state_dict is
                # unreliable; here the sampler skips the batches already trained on, and the resumed
                # run is the uninterrupted one (tests/test_resume.py), so the warning would mislead.
                warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended")
            else:
                # The batches were cut for another number of processes: which sentences the
                # interrupted run trained on cannot be told apart in the new layout.
                rank_zero_warn(
                    f"resumed with {world_size} processes where the checkpoint had {saved_world_size}: "
                    f"the rest of epoch {epoch} is drawn from the new batch layout, so some of its "
                    "sentences may be trained on twice or not at all in this epoch"
                )
            self._resume = None
        # The sampler yields whole batches (batch_size=None): the DataLoader fetches each with one
        # `dataset[indices]` and hands its columns to the collator.
        return self._dataloader("train", augmented, sampler=sampler, batch_size=None)

    def _eval_dataloader(self, split: str) -> DataLoader:
        hp = self.hparams
        sampler = SortedSampler(self._lengths(split), *self._world())
        return self._dataloader(split, sampler=sampler, batch_size=hp.eval_batch_size or hp.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Where training stands in the data, saved in every checkpoint: the shuffling seed, and
        the epoch and number of batches (per process) trained on in it."""
        state: dict[str, Any] = {"seed": self.seed}
        trainer = self.trainer
        if trainer is not None and trainer.state.fn == "fit":
            state["epoch"] = trainer.current_epoch
            state["batches_done"] = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            state["world_size"] = trainer.world_size
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._seed = state_dict.get("seed", self._seed)
        if "epoch" in state_dict:
            self._resume = (state_dict["epoch"], state_dict["batches_done"], state_dict.get("world_size", 1))

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_dataloader(self.hparams.predict_split)
