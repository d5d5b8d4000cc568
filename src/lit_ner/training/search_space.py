"""A search space for `lit_ner search`: a YAML file whose keys are `fit` options and whose values
say what each may take, read into Optuna's distributions.

    model.learning_rate: {low: 1e-5, high: 3e-4, log: true}   # a float range, on a log scale
    trainer.max_epochs: {low: 3, high: 10}                     # two ints: an int range
    model.warmup_steps: {low: 0.0, high: 0.2, step: 0.05}      # a grid of floats
    data.batch_size: [8, 16, 32]                               # a list: choices
    model.head: [softmax, crf]

A range is a mapping with `low` and `high` (and optionally `log: true` or `step`); ints on both
ends make an int range, anything else a float range (`1e-5` is read as a number, as a person
means it, though YAML 1.1 reads it as a string). Choices are scalars: strings, numbers, booleans,
null. A mistake is one line naming the file, the line and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit_ner.errors import LitNerError

RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class SearchSpace:
    """The searched options in file order: option -> distribution, and the line each is on."""

    path: Path
    distributions: dict[str, Any]
    lines: dict[str, int]

    def where(self, option: str) -> str:
        return f"{self.path}, line {self.lines[option]}: {option}"


def read_search_space(path: str | Path) -> SearchSpace:
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LitNerError(f"{path}: cannot read the search space ({exc.strerror or exc})") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise LitNerError(f"{path}{line}: not YAML ({getattr(exc, 'problem', None) or exc})") from None
    if root is None or not isinstance(root, yaml.MappingNode) or not root.value:
        raise LitNerError(f"{path}: a search space maps fit options to ranges or choices, and this has none")
    distributions, lines = {}, {}
    for key_node, value_node in root.value:
        option, line = key_node.value, key_node.start_mark.line + 1
        where = f"{path}, line {line}: {option}"
        if not isinstance(key_node, yaml.ScalarNode) or not isinstance(option, str) or not option:
            raise LitNerError(f"{path}, line {line}: each key is a fit option, such as model.learning_rate")
        if option in distributions:
            raise LitNerError(f"{where} is given twice (also on line {lines[option]})")
        value = yaml.safe_load(yaml.serialize(value_node))
        distributions[option] = distribution(value, where)
        lines[option] = line
    return SearchSpace(path, distributions, lines)


def distribution(value: Any, where: str) -> Any:
    """An Optuna distribution from one option's value: a range (mapping) or choices (list)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(value, list):
        if not value:
            raise LitNerError(f"{where}: an empty list of choices")
        for choice in value:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise LitNerError(f"{where}: choice {choice!r} is not a string, number, boolean or null")
        if len(set(map(repr, value))) != len(value):
            raise LitNerError(f"{where}: a choice is given twice")
        # True == 1 to Optuna, which would read one as the other.
        numbers = [choice for choice in value if isinstance(choice, (int, float))]
        booleans = sum(isinstance(choice, bool) for choice in numbers)
        if 0 < booleans < len(numbers):
            raise LitNerError(f"{where}: booleans mixed with numbers ({value}): Optuna takes true for 1")
        return CategoricalDistribution(value)
    if not isinstance(value, dict):
        raise LitNerError(
            f"{where}: give a range ({{low: 1e-5, high: 3e-4, log: true}}) or a list of choices "
            f"([8, 16, 32]), not {value!r}"
        )
    unknown = set(value) - RANGE_KEYS
    if unknown or not {"low", "high"} <= set(value):
        raise LitNerError(
            f"{where}: a range has low and high, and optionally log or step"
            + (f" (unknown: {', '.join(sorted(map(str, unknown)))})" if unknown else "")
        )
    low, high, step = (number(value.get(key), key, where) for key in ("low", "high", "step"))
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise LitNerError(f"{where}: log is true or false, not {log!r}")
    if low is None or high is None:
        raise LitNerError(f"{where}: low and high are numbers")
    if not low < high:
        raise LitNerError(f"{where}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise LitNerError(f"{where}: a log scale needs low > 0, not {low}")
    if log and step is not None:
        raise LitNerError(f"{where}: a log scale has no step")
    if step is not None and step <= 0:
        raise LitNerError(f"{where}: step must be positive, not {step}")
    if all(isinstance(v, int) for v in (low, high, step) if v is not None):
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def number(value: Any, key: str, where: str) -> int | float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string
        except ValueError:
            pass
    raise LitNerError(f"{where}: {key} is a number, not {value!r}")
