"""The security promises of the README, checked on the package code and on hostile inputs."""
from __future__ import annotations

import ast
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from bad_input_support import IMG, cli, sha256, small_frame
from conftest import REPO

from dejavu_ros.map import KeyframeMap, MapError

PACKAGE = REPO / "dejavu_ros"
SOURCES = sorted(PACKAGE.rglob("*.py"))
#: upper-case SQL words anywhere in a string's literal text mark it as SQL (messages are lower case)
SQL_WORDS = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE TABLE|DROP|PRAGMA|WHERE|VALUES)\b")
CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*$")


def _package_trees():
    for path in SOURCES:
        yield str(path.relative_to(REPO)), ast.parse(path.read_text(), str(path))


def _snippet(code: str):
    return [("snippet", ast.parse(code))]


def _call_name(node: ast.Call) -> str:
    """``name`` for a bare call, ``module.name`` for a call on a plain name, ``.name`` for other methods."""
    func = node.func
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else ""
        return f"{base}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def _is_const(node: ast.AST, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


RUNS_CODE = ("eval", "exec", "compile", "__import__", "os.system", "os.popen", "yaml.load",
             "yaml.unsafe_load", "np.load", "numpy.load", "torch.load")
UNPICKLERS = ("pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "joblib")
DOWNLOADERS = ("hub", "hf_hub_download", "from_pretrained", "load_state_dict_from_url")
NETWORK = ("socket", "urllib", "http", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "paramiko")


def code_execution_findings(trees) -> list[str]:
    """Ways data could run code: unpickling, eval/exec, shells, unsafe loaders."""
    found = []
    for where, tree in trees:
        for node in ast.walk(tree):
            at = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names]
                if isinstance(node, ast.ImportFrom):
                    names.append(node.module or "")
                found += [f"{at}: imports {n}" for n in names if n.split(".")[0] in UNPICKLERS]
            if not isinstance(node, ast.Call):
                continue
            name, keywords = _call_name(node), {k.arg: k.value for k in node.keywords}
            if name == "torch.load":
                if not _is_const(keywords.get("weights_only"), True):
                    found.append(f"{at}: torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load"):
                if not _is_const(keywords.get("allow_pickle", ast.Constant(False)), False):
                    found.append(f"{at}: {name} with allow_pickle")
            elif name in RUNS_CODE:
                found.append(f"{at}: calls {name}")
            if "shell" in keywords and not _is_const(keywords["shell"], False):
                found.append(f"{at}: shell=...")
    return found


def network_findings(trees) -> list[str]:
    found = []
    for where, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and node.attr in DOWNLOADERS:
                found.append(f"{where}:{node.lineno}: downloads weights ({ast.unparse(node)})")
                continue
            else:
                continue
            found += [f"{where}:{node.lineno}: {n}" for n in names if n.split(".")[0] in NETWORK]
    return found


def _safe_sql_value(node: ast.AST, bound: set[str]) -> bool:
    """An f-string part that cannot carry data: constants, int()/len(), joins of constant names or '?'."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return bool(CONSTANT.match(node.id)) or node.id in bound
    if isinstance(node, ast.FormattedValue):
        return _safe_sql_value(node.value, bound)
    if isinstance(node, ast.BinOp):
        return _safe_sql_value(node.left, bound) and _safe_sql_value(node.right, bound)
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name in ("int", "len", "float"):
            return True
        if name == ".join" and isinstance(node.func.value, ast.Constant):
            return all(_safe_sql_value(a, bound) for a in node.args)
        return False
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        targets = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        iters_ok = all(_safe_sql_value(g.iter, bound) for g in node.generators)
        return iters_ok and _safe_sql_value(node.elt, bound | targets)
    return False


def sql_findings(trees) -> tuple[list[str], int]:
    """SQL text built with f-strings, % or .format that splices in anything but constants/placeholders."""
    found, checked = [], 0
    for where, tree in trees:
        for node in ast.walk(tree):
            at = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.JoinedStr):
                if SQL_WORDS.search("".join(v.value for v in node.values if isinstance(v, ast.Constant))):
                    checked += 1
                    if not all(_safe_sql_value(v, set()) for v in node.values):
                        found.append(f"{at}: f-string SQL with a value: {ast.unparse(node)[:80]}")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) \
                    and isinstance(node.left, ast.Constant) and SQL_WORDS.search(str(node.left.value)):
                found.append(f"{at}: %-formatted SQL")
            elif isinstance(node, ast.Call) and _call_name(node) == ".format" \
                    and isinstance(node.func.value, ast.Constant) \
                    and SQL_WORDS.search(str(node.func.value.value)):
                found.append(f"{at}: .format() SQL")
    return found, checked


def test_no_code_execution_from_data_in_the_package():
    assert code_execution_findings(_package_trees()) == []
    bad = _snippet("import pickle\nx = eval(s)\nsubprocess.run(c, shell=True)\ntorch.load(p)\n"
                   "torch.load(p, weights_only=False)\nyaml.load(t)\nnp.load(f, allow_pickle=True)\n")
    assert len(code_execution_findings(bad)) == 7
    good = _snippet("torch.load(p, weights_only=True)\nyaml.safe_load(t)\nnp.load(f)\nmodel.eval()\n"
                    "re.compile(r)\nsubprocess.run(c, shell=False)\n")
    assert code_execution_findings(good) == []


def test_no_network_access_in_the_package():
    assert network_findings(_package_trees()) == []
    bad = _snippet("import socket\nfrom urllib.request import urlopen\nimport requests\ntorch.hub.load(r)\n")
    assert len(network_findings(bad)) == 4


def test_sql_takes_values_only_as_bound_parameters():
    found, checked = sql_findings(_package_trees())
    assert found == [] and checked >= 5  # the map store's f-string SQL was looked at, and holds no value
    bad = _snippet("""conn.execute(f"SELECT * FROM keyframes WHERE source = '{source}'")\n"""
                   """conn.execute("DELETE FROM meta WHERE key = '%s'" % key)\n"""
                   """conn.execute("UPDATE meta SET value = '{}'".format(v))\n"""
                   """conn.execute(f"{SELECT_SQL} WHERE k.id = {kf_id}")\n""")
    assert len(sql_findings(bad)[0]) == 4
    good = _snippet("""conn.execute(f"SELECT id FROM t WHERE id IN ({', '.join('?' * len(ids))})", ids)\n"""
                    """conn.execute(f"PRAGMA integrity_check({int(n)})")\n""")
    assert sql_findings(good) == ([], 2)


def test_hostile_strings_are_stored_as_data(tmp_path):
    """A source/frame text that is SQL stays text: bound parameters, never spliced into SQL."""
    from dejavu_ros.map.synthetic import random_keyframe

    evil = "x'); DROP TABLE keyframes; --"
    with KeyframeMap.create(tmp_path / "m.db", "ab" * 8, 10, frame_id=evil) as m:
        kf = random_keyframe(np.random.default_rng(0), image_size=(160, 120), num_keypoints=10,
                             grid_hw=(4, 5))
        kf.source, kf.frame_id = evil, evil
        m.append(kf)
    with KeyframeMap.open(tmp_path / "m.db") as m:
        assert m.integrity_check() == "ok" and len(m) == 1
        assert m.get(1).source == evil and m.frame_id == evil


def test_localize_mode_opens_the_map_read_only(assets):
    """Relocalizing many frames never writes the map; a write through its connection is refused."""
    engine = assets.engine
    assert engine.map.read_only
    before = sha256(assets.map), assets.map.stat().st_mtime_ns
    for k in range(3):
        engine.relocalize(small_frame(3.0 * k, seed=k), float(k))
    engine.reload_map()
    with pytest.raises(MapError, match=r"map\.db: map is open read-only"):
        engine.map.append(engine.map.get(1))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        engine.map._conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    assert (sha256(assets.map), assets.map.stat().st_mtime_ns) == before
    assert not (assets.map.parent / "map.db-journal").exists()


def test_model_and_map_paths_are_used_as_given(tmp_path, assets):
    """Paths are opened as files, never expanded by a shell or interpreted: odd names just work."""
    odd = tmp_path / "dir with spaces; $(touch pwned) `id` ?mode=rw#x%20&"
    odd.mkdir()
    model = Path(shutil.copy(assets.model, odd / "model $HOME.safetensors"))
    map_path = Path(shutil.copy(assets.map, odd / "map *.db"))
    run = cli("relocalize", assets.bag, "--image-topic", IMG, "--map", map_path, "--model", model,
              "--no-debug-images")
    assert run.code == 0, run.err
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert sorted(p.name for p in odd.iterdir()) == ["map *.db", "model $HOME.safetensors"]
