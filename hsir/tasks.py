"""Tasks of the paper: the registry, loading, and zero-shot prompts; answers are checked by ``hsir.answers``.

A task is a row of data in ``TASKS`` (where its files are, how a row becomes a ``Problem``, what kind of answer
it has), not a class of its own. Four answer kinds cover the paper:

- ``numeric`` (GSM8K, the synthetic testbed): numbers compare by value; ``8,000`` is 8000, ``$18.00`` is 18.
- ``math`` (MATH-500, AMC23): math-verify, called as ``verify(gold, pred)`` in that order.
- ``choice`` (MedQA, Medbullets, MedXpertQA, ARC, CSQA, GPQA): the option label, matched against the row's own
  labels (ARC has digit labels and 3- or 5-choice rows).
- ``yesno`` (StrategyQA).

Extraction order (DESIGN.md §6, ``hsir.answers``): the ``<answer>`` block, else the last "answer is …", else the
whole text (its last ``\\boxed{}`` or number). Local files come from the data folder: the ``data_dir`` argument, else
``$HSIR_DATA_DIR``, else ``../shared/data`` beside the repository. A split with no local file is read from the
kit's data cache, which its Hugging Face hub id fills once (``hsir.hub``; ``python -m hsir.data fetch``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from hsir import answers, hub, synthetic
from hsir.answers import parse_number
from hsir.runs import iter_jsonl
from hsir.traces import FORMAT_INSTRUCTION, format_trace

GPQA_PASSWORD = b"deserted-untie-orchid"


@dataclass
class Problem:
    """One query. ``answer`` is the gold answer as the task stores it (a number, LaTeX, an option label, Yes/No)."""

    qid: str
    question: str
    answer: str
    choices: dict[str, str] | None = None
    reasoning: str | None = None
    meta: dict = field(default_factory=dict)


class DataError(ValueError):
    """A malformed row; the message names the file and line."""


class Problems(list):
    """A list of problems that also remembers the rows skipped with ``on_error="skip"``."""

    skipped: list[str]

    def __init__(self, items=(), skipped=None):
        super().__init__(items)
        self.skipped = list(skipped or [])


def default_data_dir() -> Path:
    env = os.environ.get("HSIR_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


# ---------------------------------------------------------------- row converters

def as_choices(raw) -> dict[str, str]:
    """Choices as label -> text, from the local files' list of {label, text} or the hub's {label: [], text: []}."""
    if isinstance(raw, dict) and "label" in raw and "text" in raw:
        return dict(zip(raw["label"], raw["text"], strict=True))
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {c["label"]: c["text"] for c in raw}


def _need(row: dict, *keys: str):
    for k in keys:
        if k in row and row[k] not in (None, ""):
            return row[k]
    raise ValueError(f"missing field {' or '.join(repr(k) for k in keys)}")


def _checked_choice(qid, question, choices, gold, **kw) -> Problem:
    if not choices:
        raise ValueError("no answer choices")
    gold = str(gold).strip()
    if gold not in choices:
        raise ValueError(f"answer label {gold!r} is not one of the row's labels {sorted(choices)}")
    return Problem(qid=qid, question=question.strip(), answer=gold, choices=choices, **kw)


def seed_trace(reasoning: str, answer: str) -> str:
    """A seed trace in the kit's layout from a row's ``reasoning``: DeepSeek-R1's ``<think>…</think>`` then a
    summary (or the kit's own layout) keeps its think part, and the gold ``answer`` goes in the answer tags."""
    return format_trace([reasoning.split("</think>")[0].replace("<think>", "")], answer)


def _gsm8k(row: dict, i: int) -> Problem:
    if "reasoning" in row:  # R1 seed traces (camel-ai/gsm8k_distilled): no '####' line, the answer is the number
        answer = str(_need(row, "answer")).strip()
        return Problem(qid=f"gsm8k-seed-{i}", question=row["question"], answer=answer,
                       reasoning=seed_trace(row["reasoning"], answer))
    full = _need(row, "answer")
    if "####" not in full:
        raise ValueError("answer has no '#### <number>' line")
    gold = full.rsplit("####", 1)[1].strip().replace(",", "")
    if parse_number(gold) is None:
        raise ValueError(f"gold answer {gold!r} is not a number")
    return Problem(qid=f"gsm8k-{i}", question=_need(row, "question"), answer=gold, meta={"rationale": full})


def _math500(row: dict, i: int) -> Problem:
    return Problem(
        qid=row.get("unique_id", f"math500-{i}"), question=_need(row, "problem"), answer=str(_need(row, "answer")),
        meta={"level": row.get("level"), "subject": row.get("subject")},
    )


def _amc23(row: dict, i: int) -> Problem:
    gold = _need(row, "answer")
    if isinstance(gold, float) and gold.is_integer():
        gold = int(gold)
    return Problem(qid=f"amc23-{row.get('id', i)}", question=_need(row, "problem", "question"), answer=str(gold))


def _medqa(row: dict, i: int) -> Problem:
    return _checked_choice(f"medqa-{row.get('realidx', i)}", _need(row, "question"), as_choices(_need(row, "options")),
                           _need(row, "answer_idx"))


def _medxpertqa(row: dict, i: int) -> Problem:
    stem = _need(row, "question").split("\nAnswer Choices:")[0]
    return _checked_choice(str(row.get("realidx", f"medxpertqa-{i}")), stem, as_choices(_need(row, "options")),
                           _need(row, "answer_idx", "label"))


def _medbullets(row: dict, i: int) -> Problem:
    choices = {k.upper(): str(row[f"op{k}"]) for k in "abcde" if row.get(f"op{k}") not in (None, "")}
    return _checked_choice(f"medbullets-{i}", _need(row, "question"), choices, _need(row, "answer_idx"))


def _arc_like(prefix: str) -> Callable[[dict, int], Problem]:
    def convert(row: dict, i: int) -> Problem:
        q = _need(row, "question")
        stem, choices = (q["stem"], q["choices"]) if isinstance(q, dict) else (q, _need(row, "choices"))
        return _checked_choice(f"{prefix}-{row.get('id', i)}", stem, as_choices(choices), _need(row, "answerKey"))

    return convert


def _strategyqa(row: dict, i: int) -> Problem:
    gold = _need(row, "answer")
    if isinstance(gold, bool):
        gold = "Yes" if gold else "No"
    if gold not in ("Yes", "No"):
        raise ValueError(f"answer {gold!r} is not Yes or No")
    return Problem(qid=f"strategyqa-{i}", question=_need(row, "question").strip(), answer=gold,
                   meta={"rationale": row.get("rationale") or row.get("facts")})


def _gpqa(row: dict, i: int) -> Problem:
    options = [_need(row, "Correct Answer")] + [_need(row, f"Incorrect Answer {k}") for k in (1, 2, 3)]
    rid = row.get("Record ID") or str(i)
    order = list(range(4))
    random.Random(f"gpqa:{rid}").shuffle(order)  # fixed per question, independent of row order
    choices = {"ABCD"[pos]: options[j].strip() for pos, j in enumerate(order)}
    gold = "ABCD"[order.index(0)]
    return _checked_choice(f"gpqa-{rid}", _need(row, "Question"), choices, gold,
                           meta={"domain": row.get("High-level domain")})


# ---------------------------------------------------------------- readers

Row = tuple[str, int, dict]  # (file, 1-based line or row number, raw row)


def _read_jsonl(path: Path) -> Iterator[Row]:
    try:
        for n, row in iter_jsonl(path):
            yield str(path), n, row
    except ValueError as e:  # the message names the file and line
        raise DataError(str(e)) from e


def _read_json_list(path: Path) -> Iterator[Row]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):  # pandas column-oriented: {column: {row_index: value}}
        index = sorted(next(iter(data.values())), key=int)
        data = [{col: vals.get(k) for col, vals in data.items()} for k in index]
    for n, row in enumerate(data, 1):
        yield str(path), n, row


def _read_strategyqa(paths: list[Path], split: str) -> Iterator[Row]:
    path, split_file = paths
    rows = json.loads(path.read_text(encoding="utf-8"))
    idx = json.loads(split_file.read_text())[split]
    for i in idx:
        yield str(path), i + 1, rows[i]


def _read_gpqa(path: Path) -> Iterator[Row]:
    with zipfile.ZipFile(path) as z:  # the CSV stays inside its password-protected zip
        text = z.read("gpqa_diamond.csv", pwd=GPQA_PASSWORD).decode("utf-8")
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
        yield str(path), n, row


# ---------------------------------------------------------------- the registry

GENERAL_SYSTEM = "You are a helpful assistant who reasons carefully before answering. " + FORMAT_INSTRUCTION
MEDICAL_SYSTEM = (  # the paper's appendix prompt, with its answer layout replaced by the kit's trace format
    "You are a helpful medical AI Assistant. Your task is to select one correct answer from {first} to {last} "
    "for the medical question. " + FORMAT_INSTRUCTION
)
ANSWER_HINT = {
    "numeric": "Give the final answer as a number.",
    "math": "Give the final answer in simplest form.",
    "choice": "Give the letter of the correct option as the final answer.",
    "yesno": "Answer Yes or No.",
}


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # numeric | math | choice | yesno
    files: dict  # split -> files under the data folder
    convert: Callable[[dict, int], Problem]
    hub: tuple[str, str | None] | None = None  # (hub id, config) for users with internet
    hub_splits: dict = field(default_factory=dict)  # our split -> hub split, or -> (hub id, config, split)
    reader: Callable | None = None  # (local paths, split) -> rows, for files the generic readers do not fit
    medical: bool = False
    data_dir: Path | None = None
    # The paper's extraction is strict: "If no valid answer is extracted [according to the given format], the
    # response is considered incorrect", i.e. only the <answer> block counts. ``strict=False`` adds the kit's
    # fallbacks (the last "answer is", the last \boxed{} or number). The loop's profiles choose; default lenient.
    strict: bool = False

    @property
    def splits(self) -> list[str]:
        return list(self.files)

    # -- loading
    def load(self, split: str = "test", on_error: str = "raise", limit: int | None = None) -> Problems:
        """Problems of ``split``. A malformed row raises ``DataError`` naming file and line, or with
        ``on_error="skip"`` is skipped and recorded in ``.skipped``."""
        if on_error not in ("raise", "skip"):
            raise ValueError("on_error must be 'raise' or 'skip'")
        out, skipped = Problems(), []
        for i, (src, line, row) in enumerate(self._rows(split)):
            try:
                p = self.convert(row, i)
                if p.reasoning is None and row.get("reasoning"):  # a user's seed traces, e.g. the paper's MedQA ones
                    p = replace(p, reasoning=seed_trace(str(row["reasoning"]), p.answer))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                msg = f"{src}:{line}: {self.name} row is malformed: {e}"
                if on_error == "raise":
                    raise DataError(msg) from e
                skipped.append(msg)
                continue
            out.append(p)
            if limit is not None and len(out) >= limit:
                break
        out.skipped = skipped
        return out

    def local_files(self, split: str) -> list[Path]:
        data_dir = Path(self.data_dir) if self.data_dir else default_data_dir()
        return [data_dir / p for p in self.files[split]]

    def has_local(self, split: str) -> bool:
        return all(p.exists() for p in self.local_files(split))

    def hub_source(self, split: str) -> tuple[str, str | None, str] | None:
        """(hub id, config, hub split) that provides ``split``, or None. A ``hub_splits`` value is a split name of
        the task's hub id, or a whole (hub id, config, split) when another dataset provides it (GSM8K's R1 seed)."""
        src = self.hub_splits.get(split, split)
        if isinstance(src, tuple):
            return src
        return (*self.hub, src) if self.hub else None

    def _rows(self, split: str) -> Iterator[Row]:
        """Rows from the local files, else from the kit's data cache, which the hub fills once (``hsir.hub``)."""
        if split not in self.files:
            raise KeyError(f"task {self.name!r} has no split {split!r}; splits: {self.splits}")
        paths = self.local_files(split)
        missing = [p for p in paths if not p.exists()]
        if not missing:
            if self.reader is not None:
                yield from self.reader(paths, split)
                return
            for p in paths:
                if p.suffix == ".zip":
                    yield from _read_gpqa(p)
                elif p.suffix == ".json":
                    yield from _read_json_list(p)
                else:
                    yield from _read_jsonl(p)
            return
        cached = hub.cached_path(self.name, split)
        if not cached.exists() and self.name in hub.NOT_CACHED and self.hub_source(split):
            yield from self._hub_direct(split, missing)
            return
        if not cached.exists():
            self._fetch(split, missing)
        yield from _read_jsonl(cached)

    def _fetch(self, split: str, missing: list[Path]) -> None:
        where = (f"local file {missing[0]} is missing (set HSIR_DATA_DIR or data_dir to the data folder) and "
                 f"{hub.cached_path(self.name, split)} is not cached")
        source = self.hub_source(split)
        if source is None:
            raise FileNotFoundError(f"{self.name}/{split}: {where}, and this task has no hub id")
        try:
            hub.download(self.name, split, source)
        except Exception as e:  # offline, gated, or renamed: say what provides it and how to fetch it
            msg = str(e).splitlines()[0] if str(e) else ""
            raise FileNotFoundError(
                f"{self.name}/{split}: {where}; hub id {source[0]!r} (config {source[1]!r}, split {source[2]!r}) "
                f"provides it, but fetching failed ({e.__class__.__name__}: {msg}). With network, run: "
                f"{hub.fetch_command(self.name, split)}") from e

    def _hub_direct(self, split: str, missing: list[Path]) -> Iterator[Row]:
        hub_id, config, hub_split = self.hub_source(split)
        try:
            rows = list(hub.hub_rows(hub_id, config, hub_split))
        except Exception as e:
            raise FileNotFoundError(
                f"{self.name}/{split}: local file {missing[0]} is missing, and loading hub id {hub_id!r} (split "
                f"{hub_split!r}) with your own access failed: {e.__class__.__name__}") from e
        for n, row in enumerate(rows, 1):
            yield f"hf://{hub_id}/{hub_split}", n, row

    # -- prompting
    def messages(self, problem: Problem, hint: str | None = None) -> list[dict]:
        """Zero-shot chat messages in the trace format; a ``hint`` (``Task.hint``) ends the user message."""
        if self.kind == "choice":
            labels = list(problem.choices)
            options = "\n".join(f"{k}. {v}" for k, v in problem.choices.items())
            if self.medical:
                system = MEDICAL_SYSTEM.format(first=labels[0], last=labels[-1])
                user = (f"For the following medical question, select one correct answer from {labels[0]} to "
                        f"{labels[-1]}.\nQuestion: {problem.question}\nOptions:\n{options}")
            else:
                system = GENERAL_SYSTEM
                user = f"Question: {problem.question}\nOptions:\n{options}\n{ANSWER_HINT['choice']}"
        else:
            system = GENERAL_SYSTEM
            user = f"{problem.question}\n{ANSWER_HINT[self.kind]}"
        if hint:
            user = f"{user}\n{hint}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def hint(self, problem: Problem) -> str:
        """The gold answer as a hint line, for the answer-driven baseline (a failed query resampled with its answer
        given). Only generation sees it: training rows keep the plain prompt, so the hint never leaks into them."""
        gold = f"option {problem.answer}" if self.kind == "choice" else problem.answer
        return f"Hint: the correct answer is {gold}. Show the reasoning that leads to it."

    def prompt(self, problem: Problem, tokenizer, hint: str | None = None) -> str:
        """The prompt text with the model's own chat template applied (generation prompt added)."""
        msgs = self.messages(problem, hint)
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in msgs) + "\n\n"

    # -- answers (hsir.answers, for this task's answer kind)
    def extract(self, problem: Problem, completion: str) -> str | None:
        """The final answer a completion states, normalised for this task's kind, or None."""
        return answers.extract(self.kind, completion, problem.choices, self.strict)

    def score(self, problem: Problem, completion: str) -> bool:
        """Is the completion's final answer the gold answer?"""
        return self.matches(problem, self.extract(problem, completion))

    def matches(self, problem: Problem, pred: str | None) -> bool:
        """Is an extracted answer (``extract``) the gold answer?"""
        return answers.matches(self.kind, pred, problem.answer)

    def states_answer(self, step: str, problem: Problem, how: str = "text") -> bool:
        """VeriExit's step test (``hsir.answers.states_answer``): does this step already give the gold answer?"""
        return answers.states_answer(self.kind, step, problem.answer, problem.choices, how)


def _synthetic_rows(paths: list[Path], split: str) -> Iterator[Row]:
    for n, row in enumerate(synthetic.rows(split), 1):
        yield f"synthetic:{split}", n, row


def _synthetic(row: dict, i: int) -> Problem:
    return Problem(qid=row["qid"], question=row["question"], answer=str(row["answer"]),
                   reasoning=row.get("reasoning"), meta=row.get("meta", {}))


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("gsm8k", "numeric", {"train": ["gsm8k/train.jsonl"], "test": ["gsm8k/test.jsonl"],
                              "seed": ["seed_reasoning/gsm8k_r1/sft_train.jsonl",
                                       "seed_reasoning/gsm8k_r1/sft_val.jsonl"]},
         # the seed: R1 traces of GSM8K-train questions (the local file is a 110-row sample of this dataset)
         _gsm8k, hub=("openai/gsm8k", "main"), hub_splits={"seed": ("camel-ai/gsm8k_distilled", None, "train")}),
    Task("math500", "math", {"test": ["math500/test.jsonl"]}, _math500, hub=("HuggingFaceH4/MATH-500", None)),
    Task("amc23", "math", {"test": ["amc23/test.jsonl"]}, _amc23, hub=("zwhe99/amc23", None)),
    Task("medqa", "choice", {"train": ["medqa/train.jsonl"], "test": ["medqa/test.jsonl"]}, _medqa,
         hub=("GBaker/MedQA-USMLE-4-options", None), medical=True),
    Task("medbullets", "choice", {"test": ["medbullets/medbullets_op4.json"]}, _medbullets, medical=True),
    Task("medxpertqa", "choice", {"test": ["medxpertqa/medxpertqa-r/test.jsonl", "medxpertqa/medxpertqa-u/test.jsonl"],
                                  "dev": ["medxpertqa/medxpertqa-r/train.jsonl"]},
         _medxpertqa, hub=("TsinghuaC3I/MedXpertQA", "Text"), medical=True),
    Task("arc", "choice", {"train": ["arc_challenge/ARC-Challenge-Train.jsonl"],
                           "dev": ["arc_challenge/ARC-Challenge-Dev.jsonl"],
                           "test": ["arc_challenge/ARC-Challenge-Test.jsonl"]},
         _arc_like("arc"), hub=("allenai/ai2_arc", "ARC-Challenge"), hub_splits={"dev": "validation"}),
    # CSQA's official test labels are hidden; like the field, "test" scores the labelled dev split.
    Task("csqa", "choice", {"train": ["commonsenseqa/train_rand_split.jsonl"],
                            "test": ["commonsenseqa/dev_rand_split.jsonl"]},
         _arc_like("csqa"), hub=("tau/commonsense_qa", None), hub_splits={"test": "validation"}),
    Task("strategyqa", "yesno", {s: ["strategyqa/strategy_qa.json", "strategyqa/strategy_qa__default.json"]
                                 for s in ("train", "test")}, _strategyqa, hub=("ChilleD/StrategyQA", None),
         reader=_read_strategyqa),
    Task("gpqa", "choice", {"test": ["gpqa/gpqa_diamond.zip"]}, _gpqa,
         hub=("Idavidrein/gpqa", "gpqa_diamond"), hub_splits={"test": "train"}),
    Task("synthetic", "numeric", {s: [] for s in synthetic.SIZES}, _synthetic, reader=_synthetic_rows),
]}


def get_task(name: str, data_dir: str | Path | None = None, strict: bool | None = None) -> Task:
    """The task called ``name`` (``strict``: only the <answer> block counts); an unknown name lists the valid ones."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    task = TASKS[name]
    if data_dir is not None:
        task = replace(task, data_dir=Path(data_dir))
    if strict is not None:
        task = replace(task, strict=strict)
    return task
