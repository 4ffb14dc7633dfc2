"""The installed project is one import name, `mdeberta`, whatever folder the user works in."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Modules a user may well have in their working directory, each failing loudly if it is imported.
DECOYS = {
    "train.py": "raise SystemExit('decoy train.py imported')\n",
    "eval/__init__.py": "raise SystemExit('decoy eval/ imported')\n",
    "pipelines/__init__.py": "raise SystemExit('decoy pipelines/ imported')\n",
    "vocab.py": "raise SystemExit('decoy vocab.py imported')\n",
}


@pytest.fixture(scope="module")
def decoy_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("user-project")
    for name, text in DECOYS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    "launcher",
    [
        ["-m", "mdeberta.train"],
        ["-m", "mdeberta.pipelines.clean"],
        ["-m", "mdeberta.pipelines.shard"],
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
        + ["-m", "mdeberta.train"],
    ],
    ids=["train", "clean", "shard", "torchrun"],
)
def test_entry_points_ignore_the_users_own_modules(decoy_dir, launcher):
    out = subprocess.run(
        [sys.executable, *launcher, "--help"], cwd=decoy_dir, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "decoy" not in out.stdout + out.stderr
    assert "Example" in out.stdout


def test_the_stages_import_as_mdeberta_submodules(decoy_dir):
    code = (
        "import mdeberta.train.loop, mdeberta.eval.xnli, mdeberta.vocab.build, "
        "mdeberta.pipelines.clean, sys; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'train', 'eval', 'vocab', "
        "'pipelines'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=decoy_dir, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_the_wheel_holds_one_top_level_name(tmp_path):
    """What `pip install .` (and Dataflow's staged package) would put into site-packages."""
    # built from a copy: setuptools leaves build/ behind, whose stale files would enter later wheels
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "demo", "runs")
    shutil.copytree(Path(__file__).resolve().parents[1], source, ignore=skip)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*cmd, "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("mdeberta-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"mdeberta"}
    for module in ("pipelines/clean.py", "vocab/build.py", "train/loop.py", "eval/xnli.py"):
        assert f"mdeberta/{module}" in names
    assert "mdeberta/train/configs/tiny.toml" in names
    assert "mdeberta/resources/languages.tsv" in names
