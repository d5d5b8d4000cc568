"""Reads an offline W&B run back from its `run-<id>.wandb` file, as `wandb sync` would upload it.

The file is wandb's own log: a 7-byte header (`:W&B`, magic, version), then LevelDB-style
records (4-byte checksum, 2-byte length, 1-byte type: full, first, middle, last) in 32 KiB blocks,
each record one `wandb_internal_pb2.Record` protobuf. wandb 0.31 has no public reader for
offline runs, so the tests read the protobufs with wandb's own message classes.
"""

import json
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7  # the file's header, and each record's
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path):
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run log"
    records, pending, position = [], b"", HEADER
    while position + HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < HEADER:  # a block's tail too short for a record header is padding
            position += left_in_block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            records.append(pending + chunk)
        else:  # zero-filled space at the end of a block
            position += BLOCK - position % BLOCK if position % BLOCK else 0
    return [wandb_internal_pb2.Record.FromString(record) for record in records]


def _items(items):
    return {
        "/".join(item.nested_key) if item.nested_key else item.key: json.loads(item.value_json)
        for item in items
    }


def read_run(path):
    """`{"config": {...}, "history": [row, ...], "summary": {...}, "artifacts": [...], "group",
    "name"}` of one offline run; each artifact `{"name", "type", "aliases", "metadata", "files"}`, its files
    `{path: (size, local copy waiting in W&B's staging folder)}`."""
    run = {"config": {}, "history": [], "summary": {}, "artifacts": []}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            run["config"].update(_items(record.config.update))
        elif kind == "run":
            run["group"], run["name"] = record.run.run_group, record.run.display_name
        elif kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
        elif kind == "artifact":
            artifact = record.artifact
            run["artifacts"].append(
                {
                    "name": artifact.name,
                    "type": artifact.type,
                    "aliases": list(artifact.aliases),
                    "metadata": json.loads(artifact.metadata or "{}"),
                    "files": {
                        entry.path: (entry.size, entry.local_path) for entry in artifact.manifest.contents
                    },
                }
            )
    return run
