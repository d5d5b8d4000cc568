"""Hub data sets by name, as they come: ClassLabel tags under other column names, a config name,
string tags, integer tags named by a label2id mapping (tner's `label.json`), and one saved with
`save_to_disk`. Each is built on disk in the Hub's own file formats (parquet with the features in
its metadata, arrow), so `datasets` reads it through the same loaders as a download."""

import json

import datasets
import pytest

from lit_ner.data.datamodule import NERDataModule
from lit_ner.data.sources import data_name
from lit_ner.errors import LitNerError
from lit_ner.training.cli import cli_main
from tests.test_cli import WNUT_CONFIG

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [["Ann", "Lee", "visited", "Oslo"], ["Rome", "is", "far"], ["Bob", "slept"]]
TAG_IDS = [[1, 2, 0, 3], [3, 0, 0], [1, 0]]


def write_parquet(directory, columns, features, splits=("train", "validation", "test")):
    """A Hub data set's parquet files, as the Hub's parquet conversion lays them out."""
    directory.mkdir(parents=True, exist_ok=True)
    part = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    for split in splits:
        part.to_parquet(str(directory / f"{split}-00000-of-00001.parquet"))
    return str(directory)


def datamodule(name, tiny_model_dir, **kwargs):
    return NERDataModule(dataset_name=name, tokenizer_name_or_path=tiny_model_dir, **kwargs)


def test_classlabel_tags_under_another_column_name_are_found_and_named(tmp_path, tiny_model_dir):
    name = write_parquet(
        tmp_path / "someone" / "ner",
        {"words": SENTENCES, "tags": TAG_IDS, "pos": TAG_IDS},
        {
            "words": datasets.Sequence(datasets.Value("string")),
            "tags": datasets.Sequence(datasets.ClassLabel(names=LABELS)),
            "pos": datasets.Sequence(datasets.Value("int32")),
        },
    )
    data = datamodule(name, tiny_model_dir)
    assert data.label_names == LABELS  # the ClassLabel's own order
    assert data.words("test")[0] == SENTENCES[0]
    assert data.tags("test")[0] == ["B-PER", "I-PER", "O", "B-LOC"]
    with pytest.raises(LitNerError, match=r"has no column 'ner_tags' \(it has \['words', 'tags', 'pos'\]\)"):
        datamodule(name, tiny_model_dir, tags_column="ner_tags").label_names  # noqa: B018


def test_a_config_name_picks_that_configs_files(tmp_path, tiny_model_dir):
    # wikiann's layout: one config per language, named in the README's YAML.
    root = tmp_path / "wikiann"
    features = {
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=LABELS)),
        "langs": datasets.Sequence(datasets.Value("string")),
    }
    english = {"tokens": SENTENCES, "ner_tags": TAG_IDS, "langs": [["en"] * len(s) for s in SENTENCES]}
    write_parquet(root / "en", english, features)
    french = [["Anne", "habite", "Paris"]]
    write_parquet(root / "fr", {"tokens": french, "ner_tags": [[1, 0, 3]], "langs": [["fr"] * 3]}, features)
    configs = "\n".join(
        f"- config_name: {lang}\n  data_files:\n"
        + "".join(
            f"  - split: {s}\n    path: {lang}/{s}-*.parquet\n" for s in ("train", "validation", "test")
        )
        for lang in ("en", "fr")
    )
    (root / "README.md").write_text(f"---\nconfigs:\n{configs}---\n")
    data = datamodule(str(root), tiny_model_dir, dataset_config_name="fr")
    assert data.words("train") == french and data.tags("train") == [["B-PER", "O", "B-LOC"]]
    assert data_name(str(root), "fr", None, None) == "wikiann-fr"


def test_string_tags_in_another_scheme_are_read_and_rewritten_in_bio(tmp_path, tiny_model_dir):
    tags = [["B-PER", "E-PER", "O", "S-LOC"], ["S-LOC", "O", "O"], ["S-PER", "O"]]
    name = write_parquet(
        tmp_path / "bioes",
        {"tokens": SENTENCES, "ner_tags": tags},
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.Value("string")),
        },
    )
    data = datamodule(name, tiny_model_dir)
    assert data.tag_scheme == "IOBES"
    assert data.label_names == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert data.tags("train")[0] == ["B-PER", "I-PER", "O", "B-LOC"]


def test_integer_tags_are_named_by_a_label_json_or_a_given_label2id(tmp_path, tiny_model_dir):
    # tner's data sets: plain integer tags, their names in dataset/label.json (label2id).
    label2id = {"O": 0, "B-person": 3, "I-person": 4, "B-location": 1, "I-location": 2}
    ids = [[3, 4, 0, 1], [1, 0, 0], [3, 0]]
    features = {
        "tokens": datasets.Sequence(datasets.Value("string")),
        "tags": datasets.Sequence(datasets.Value("int32")),
    }
    name = write_parquet(tmp_path / "tner" / "wnut", {"tokens": SENTENCES, "tags": ids}, features)
    with pytest.raises(LitNerError, match="plain integer tags .* set --data.label_names"):
        datamodule(name, tiny_model_dir).label_names  # noqa: B018
    (tmp_path / "tner" / "wnut" / "dataset").mkdir()
    (tmp_path / "tner" / "wnut" / "dataset" / "label.json").write_text(json.dumps(label2id))
    from_file = datamodule(name, tiny_model_dir)
    assert from_file.label_names == ["O", "B-location", "I-location", "B-person", "I-person"]
    assert from_file.tags("train")[0] == ["B-person", "I-person", "O", "B-location"]
    given = datamodule(name, tiny_model_dir, label_names=label2id)
    assert given.tags("train") == from_file.tags("train")
    with pytest.raises(LitNerError, match=r"the label ids \[0, 1, 3\] are not 0..2"):
        datamodule(name, tiny_model_dir, label_names={"O": 0, "B-x": 1, "I-x": 3}).label_names  # noqa: B018


def test_a_data_set_saved_with_save_to_disk_loads_from_its_folder(tmp_path, tiny_model_dir):
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=LABELS)),
        }
    )
    part = datasets.Dataset.from_dict({"tokens": SENTENCES, "ner_tags": TAG_IDS}, features=features)
    datasets.DatasetDict({"train": part, "test": part}).save_to_disk(str(tmp_path / "saved"))
    data = datamodule(str(tmp_path / "saved"), tiny_model_dir)
    assert data.label_names == LABELS and data.tags("test")[2] == ["B-PER", "O"]


def test_runs_are_named_after_their_data():
    assert data_name(None, None, None, None) == "wnut"  # the release inside the package
    assert data_name("leondz/wnut_17", None, None, None) == "wnut"
    assert data_name("tner/ontonotes5", None, None, None) == "tner-ontonotes5"
    assert data_name("wikiann", "fr", None, None) == "wikiann-fr"
    assert data_name(None, None, "/data/conll2003/eng.train", None) == "eng.train"
    assert data_name(None, None, "/data/conll2003/train.txt", None) == "conll2003"
    assert data_name(None, None, "/data/my corpus.jsonl.gz", None) == "my_corpus"


def test_a_hub_data_set_trains_through_the_cli_in_a_run_named_after_it(tmp_path, tiny_model_dir):
    name = write_parquet(
        tmp_path / "someone" / "ner",
        {"tokens": SENTENCES, "ner_tags": TAG_IDS},
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=LABELS)),
        },
    )
    cli = cli_main(
        [
            "fit",
            f"--config={WNUT_CONFIG}",
            f"--model.model_name_or_path={tiny_model_dir}",
            f"--data.dataset_name={name}",
            "--data.dataset_revision=null",
            f"--data.cache_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
            "--trainer.max_steps=1",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.model.label_names == LABELS
    run = tmp_path / "runs" / "ner" / "version_0"
    assert json.loads((run / "test_report.json").read_text())["report"]["micro avg"]["support"] == 4
    assert json.loads((run / "hf_model" / "config.json").read_text())["id2label"]["1"] == "B-PER"
