"""Issue 15 fuzz: a few hundred corrupted inputs, made from valid files by truncation, byte
flips, wrong types and NaN, fed to `tad score`, `tad import-features` and the config loader.

No Python traceback escapes (every failure is a one-line ``Error:`` or a listed file), and
no input file changes. Seeded, in-process (click's CliRunner), well under a minute.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import random
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tad.cli import main
from tad.errors import TadInputError

SEED = 15


def _digest(paths) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(0, max(1, len(data)))]


def _flip(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


_WRONG = ["x", -1, 0, None, [], {}, [1, 2, 3], True, 1e308, -1e308, "NaN", float("nan"), float("inf"),
          [float("nan"), 1.0], {"a": 1}, "", 3.5]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:4]):
            yield from _paths(value, prefix + (i,))


def _wrong_type(rng: random.Random, data: bytes) -> bytes:
    obj = json.loads(data)
    paths = [p for p in _paths(obj) if p]
    path = rng.choice(paths)
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = rng.choice(_WRONG)
    return json.dumps(obj).encode()  # NaN/Infinity tokens included, as Python writes them


def _nan_text(rng: random.Random, data: bytes) -> bytes:
    text = data.decode()
    numbers = [i for i, ch in enumerate(text) if ch.isdigit() and (i == 0 or not text[i - 1].isalnum())]
    if not numbers:
        return data
    at = rng.choice(numbers)
    end = at
    while end < len(text) and (text[end].isdigit() or text[end] in ".e-"):
        end += 1
    return (text[:at] + rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]) + text[end:]).encode()


def _corrupt(rng: random.Random, data: bytes, kinds) -> tuple[str, bytes]:
    kind = rng.choice(kinds)
    return kind, {"truncate": _truncate, "flip": _flip, "wrong_type": _wrong_type, "nan": _nan_text}[kind](rng, data)


def _assert_clean(result, what: str) -> None:
    assert result.exit_code in (0, 1, 2, 3), f"{what}: exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{what}: {type(result.exception).__name__}: {result.exception}\n{result.output}"
    assert "Traceback" not in result.output, f"{what}\n{result.output}"
    if result.exit_code == 1:
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, f"{what}\n{result.output}"


def test_fuzz_tad_score(tmp_path):
    data = Path(str(resources.files("tad") / "data"))
    valid = {"P": (data / "example_predictions.json").read_bytes(), "A": (data / "example_annotations.json").read_bytes()}
    rng = random.Random(SEED)
    runner = CliRunner()
    for i in range(150):
        target = rng.choice(["P", "A"])
        kind, corrupted = _corrupt(rng, valid[target], ["truncate", "flip", "wrong_type", "nan"])
        preds, ann = tmp_path / f"P{i}.json", tmp_path / f"A{i}.json"
        preds.write_bytes(corrupted if target == "P" else valid["P"])
        ann.write_bytes(corrupted if target == "A" else valid["A"])
        before = _digest([preds, ann])
        args = ["score", str(preds), "-a", str(ann), "-s", rng.choice(["test", "validation", "all"])]
        if rng.random() < 0.3:
            args += ["--metrics-out", str(rng.choice([preds, ann, tmp_path / f"m{i}.json"]))]
        result = runner.invoke(main, args)
        _assert_clean(result, f"score #{i} ({kind} of {target})")
        assert _digest([preds, ann]) == before, f"score #{i} changed an input"


def _valid_feature_files(folder: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(SEED)
    folder.mkdir()
    out = {}
    for name in ("a", "b", "c"):
        buf = io.BytesIO()
        np.save(buf, rng.standard_normal((12 + len(out), 8)).astype(np.float32))
        out[f"{name}.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, feats=rng.standard_normal((10, 8)).astype(np.float32))
    out["z.npz"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save(torch.randn(10, 8), buf)
    out["t.pt"] = buf.getvalue()
    return out


def _nan_array(rng: random.Random, data: bytes) -> bytes:
    array = np.load(io.BytesIO(data))
    array.flat[rng.randrange(array.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e6])
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _wrong_array(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(7)
    buf = io.BytesIO()
    if choice == 0:
        np.save(buf, np.array(["a", "b"]))
    elif choice == 1:
        np.save(buf, np.zeros((0, 8), dtype=np.float32))
    elif choice == 2:
        np.save(buf, np.zeros((2, 3, 4), dtype=np.float32))
    elif choice == 3:
        np.save(buf, np.array(3.0))
    elif choice == 4:
        np.save(buf, np.zeros((5, 8), dtype=np.complex64))
    elif choice == 5:
        np.savez(buf, feats=np.zeros((5, 8)))  # a zip named .npy
    else:
        buf.write(b"0.1 0.2 0.3\n0.4 0.5 0.6\n")  # text named .npy
    return buf.getvalue()


def _wrong_pt(rng: random.Random, data: bytes) -> bytes:
    buf = io.BytesIO()
    torch.save(rng.choice([np.zeros((5, 8), dtype=np.float32), {"feats": "x"}, [torch.zeros(3, 8)], 3.0]), buf)
    return buf.getvalue()


def test_fuzz_tad_import_features(tmp_path):
    valid = _valid_feature_files(tmp_path / "valid")
    rng = random.Random(SEED)
    runner = CliRunner()
    for i in range(100):
        ext = rng.choice(["npy", "npy", "npz", "pt"])
        names = [n for n in valid if n.endswith(ext)]
        folder = tmp_path / f"in{i}"
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(valid[name])
        victim = folder / rng.choice(names)
        kinds = {"npy": ["truncate", "flip", "nan_array", "wrong_array"], "pt": ["truncate", "flip", "wrong_pt"],
                 "npz": ["truncate", "flip"]}[ext]
        kind = rng.choice(kinds)
        data = victim.read_bytes()
        victim.write_bytes({"truncate": _truncate, "flip": _flip, "nan_array": _nan_array,
                            "wrong_array": _wrong_array, "wrong_pt": _wrong_pt}[kind](rng, data))
        before = _digest(sorted(folder.iterdir()))
        out = tmp_path / f"out{i}.h5"
        args = ["import-features", str(folder), "-o", str(out), "--ext", ext, "--quiet",
                "--fps", rng.choice(["30", "30", "nan", "0", "-5", "1e-300"])]
        result = runner.invoke(main, args)
        _assert_clean(result, f"import #{i} ({kind} of {victim.name})")
        assert _digest(sorted(p for p in folder.iterdir())) == before, f"import #{i} changed an input"
        assert not Path(f"{out}.parts").exists(), f"import #{i} left parts behind"


_CFG_OPTIONS = ["max_epochs=abc", "max_epochs=-1", "max_epochs=nan", "model=3", "model.embed_dim=[1",
                "train_dataloader.batch_size=nan", "train_dataloader.batch_size=x", "model.embed_dimm=4",
                "max_epochz=2", "a.b.c=1", "=3", "ann_file=", "model.encoder=None", "train_cfg=[]",
                "optim_wrapper.optimizer.lr=abc", "param_scheduler=3", "model.num_classes={'a':1}"]


def test_fuzz_config_loader(tmp_path):
    from tad.engine.runner import load_config

    shipped = Path(load_config("tiny_test.py").filename)
    valid = shipped.read_bytes()
    (tmp_path / "_base_").symlink_to(shipped.parent / "_base_")
    rng = random.Random(SEED)
    for i in range(80):
        path = tmp_path / f"cfg{i}.py"
        options: list[str] = []
        if i % 3 == 0:
            path.write_bytes(valid)
            options = rng.sample(_CFG_OPTIONS, rng.randint(1, 2))
        else:
            kind, corrupted = _corrupt(rng, valid, ["truncate", "flip", "nan"])
            path.write_bytes(corrupted)
        before = _digest([path])
        try:
            load_config(path, options)
        except TadInputError as exc:
            assert "\n" not in str(exc), f"config #{i}: multi-line error {exc}"
        assert _digest([path]) == before
