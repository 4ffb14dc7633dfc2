"""The three Beam jobs as Dataflow would receive them, checked offline (no cloud account).

Each job (clean, the vocabulary sample, shard) is launched the way docs/dataflow.md says, on
DataflowRunner with `--dry_run=True`: Beam builds everything it would submit (the stager runs
`python -m build` on `--setup_file ./pyproject.toml`, the pipeline proto is what workers get,
side inputs get Dataflow's access patterns) and stops short of the network. A template or
`--dataflow_job_file` cannot be made offline: both stage the package and the proto to a
`gs://` location first. Then

- the graph has the shuffles the cost model counts (benchmarks/dataflow_cost.py) and the side
  inputs the design intends, the big one (dedup drops) read by key, never whole;
- no local-run setting (FnApiRunner's worker options, malloc and GC tuning) reaches the job;
- Beam's stager copies the package to a local staging folder, and a fresh virtual environment
  holding only the package's declared dependencies (and what they need) installs it with pip and
  unpickles every DoFn, CombineFn and coder of the three graphs, as a worker does.

Needs the `gcp` extra (Beam's Dataflow client, `build`); skipped without it.
"""

from __future__ import annotations

import gc
import json
import os
import pkgutil
import runpy
import subprocess
import sys
import tempfile
import venv
import warnings
from collections.abc import Callable
from email.parser import Parser
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", reason="gcp extra")
pytest.importorskip("build", reason="gcp extra")

import apache_beam as beam  # noqa: E402
from apache_beam.portability import common_urns  # noqa: E402
from apache_beam.portability.api import beam_runner_api_pb2 as pb  # noqa: E402
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner  # noqa: E402
from apache_beam.runners.dataflow.internal import apiclient  # noqa: E402
from apache_beam.runners.portability.stager import Stager  # noqa: E402
from packaging.requirements import Requirement  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402

import mdeberta.pipelines  # noqa: E402
from benchmarks.dataflow_cost import SHUFFLES  # noqa: E402
from mdeberta import io, resources_path  # noqa: E402
from mdeberta.cli import main as cli  # noqa: E402
from mdeberta.pipelines.options import (  # noqa: E402
    RUNNER_GC_THRESHOLD,
    WORKER_MALLOC_ENV,
    beam_args,
)
from tests.tiny_vocab import write_tiny_vocab  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LANGS = ("en", "de", "sw")
# docs/dataflow.md's options, less --requirements_file (its stager step downloads from PyPI)
DOCUMENTED = [
    "--runner", "DataflowRunner", "--project", "my-project", "--region", "europe-west4",
    "--temp_location", "gs://my-bucket/tmp", "--staging_location", "gs://my-bucket/staging",
    "--setup_file", "./pyproject.toml", "--machine_type", "n2-highmem-4",
    "--max_num_workers", "100",
]  # fmt: skip
OFFLINE = ["--dry_run=True", "--experiments=disable_logging_submission_environment"]
ITERABLE = common_urns.side_inputs.ITERABLE.urn
MULTIMAP = common_urns.side_inputs.MULTIMAP.urn
# consumer step -> {(producer step[.output], access pattern)}; Dataflow reads an AsDict/AsList
# whole (iterable), an AsMultiMap by key
SIDE_INPUTS = {
    "clean": {
        # (file, position) cut-off per language; first position of each chunk per (lang, file)
        "Clean": {("LastAdmitted", ITERABLE), ("Read.chunks", ITERABLE)},
        "FindDrops": {("Read.chunks", ITERABLE)},
        "WriteParts": {("Read.chunks", ITERABLE)},
        "WriteStats": {("MergeStats", ITERABLE), ("Read.chunks", ITERABLE)},  # counters
    },
    "sample-vocab": {"AllLangs": {("AllLangs", ITERABLE)}},  # inside Beam's ToList
    "shard": {
        "Place": {("TokenizePack", ITERABLE)},  # rows per packing chunk
        "WriteJobStats": {("Write", ITERABLE), ("TokenizePack.stats", ITERABLE)},
    },
}


class _Submitted(BaseException):
    """Raised where DataflowRunner returns: the job is built, the launcher must not go on to
    read the outputs. BaseException so that no `except Exception` on the way swallows it."""

    def __init__(self, job, environ: dict, gc_threshold: tuple):
        super().__init__(job.google_cloud_options.job_name)
        self.job, self.environ, self.gc_threshold = job, environ, gc_threshold


def _launch(job: Callable[[], object], argv: list[str]) -> _Submitted:
    """Run `job` (a launcher, as a user starts it) with `argv` as sys.argv; what it submits."""
    dry_run = DataflowRunner.run_pipeline

    def submit(runner, pipeline, options, pipeline_proto=None):
        result = dry_run(runner, pipeline, options, pipeline_proto)
        raise _Submitted(result.job, dict(os.environ), gc.get_threshold())

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DataflowRunner, "run_pipeline", submit)
        mp.setattr(sys, "argv", argv)
        mp.chdir(REPO)  # --setup_file ./pyproject.toml is relative, as in the docs
        with warnings.catch_warnings(), pytest.raises(_Submitted) as submitted:
            warnings.filterwarnings("ignore", "'mdeberta.pipelines", RuntimeWarning)  # re-run
            job()
    return submitted.value


def _python_m(module: str, *args: str) -> _Submitted:
    """`python -m module args <Dataflow options>`, in this process."""
    argv = [module, *args, *DOCUMENTED, *OFFLINE]
    return _launch(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True), argv)


def _vocabulary_sample(corpus: str, output: str) -> _Submitted:
    """The sampling job as `mdeberta build-vocab ... <Dataflow options>` starts it (in a child
    process there, so this calls the job function it calls, with the options it passes)."""
    from mdeberta.pipelines.sample_vocab import sample_job

    def job():
        sample_job(
            corpus, output, alpha=0.3, sentences=1000, max_passes=10.0, seed=0,
            max_sentence_bytes=8192, workers=4, beam_args=[*DOCUMENTED, *OFFLINE],
        )  # fmt: skip

    return _launch(job, ["mdeberta"])


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """{job: _Submitted}; the vocabulary sample and shard read a real clean corpus made here."""
    tmp = tmp_path_factory.mktemp("dataflow")
    sample = [str(resources_path("sample", f"{lang}.txt.xz")) for lang in LANGS]
    with pytest.raises(SystemExit) as done:
        cli(["clean", *sample, "--output", str(tmp / "clean")])
    assert done.value.code in (0, None)
    write_tiny_vocab(tmp / "vocab", _paragraphs(tmp / "clean"), 300)
    corpus, out = str(tmp / "clean"), ["--workers", "4", "--output"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(tmp))  # the stager's build folders land here
        return {
            # --max-docs-per-lang adds the admission cut-offs: every step of the job is in the graph
            "clean": _python_m(
                "mdeberta.pipelines.clean",
                *sample,
                "--max-docs-per-lang",
                "1000",
                *out,
                str(tmp / "df-clean"),
            ),  # fmt: skip
            "sample-vocab": _vocabulary_sample(corpus, str(tmp / "df-sample")),
            "shard": _python_m(
                "mdeberta.pipelines.shard",
                "--corpus",
                corpus,
                "--vocab",
                str(tmp / "vocab"),
                *out,
                str(tmp / "df-shards"),
            ),  # fmt: skip
        }


def _paragraphs(corpus: Path):
    for part in sorted(corpus.glob("*/part-*.jsonl.zst")):
        with io.open_file(str(part), "rt") as f:
            for line in f:
                yield from json.loads(line)["text"].split("\n")


# the graph


def _top(name: str) -> str:
    return name.split("/")[0]


def _producers(proto: pb.Pipeline) -> dict[str, str]:
    """PCollection id -> 'Step' or 'Step.tag' (its top-level step, and the output if tagged)."""
    out = {}
    for t in proto.components.transforms.values():
        if not t.subtransforms:
            for tag, pcoll in t.outputs.items():
                out[pcoll] = _top(t.unique_name) + ("" if tag == "None" else f".{tag}")
    return out


def side_inputs(proto: pb.Pipeline) -> dict[str, set]:
    producers, found = _producers(proto), {}
    for t in proto.components.transforms.values():
        if t.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = pb.ParDoPayload.FromString(t.spec.payload)
            for tag, side in payload.side_inputs.items():
                found.setdefault(_top(t.unique_name), set()).add(
                    (producers[t.inputs[tag]], side.access_pattern.urn)
                )
    return found


def shuffles(proto: pb.Pipeline) -> set[str]:
    """Top-level steps holding a GroupByKey: what Dataflow Shuffle bills."""
    gbk = common_urns.primitives.GROUP_BY_KEY.urn
    return {_top(t.unique_name) for t in proto.components.transforms.values() if t.spec.urn == gbk}


@pytest.mark.parametrize("name", sorted(SIDE_INPUTS))
def test_graph_has_the_designed_side_inputs_and_the_costed_shuffles(jobs, name):
    proto = jobs[name].job.proto_pipeline
    assert side_inputs(proto) == SIDE_INPUTS[name]
    # every shuffle of the graph has a size in the cost model, and the model costs no other
    modelled = {step for step, _ in SHUFFLES[name]}
    assert shuffles(proto) == modelled


@pytest.mark.parametrize("name", sorted(SIDE_INPUTS))
def test_no_local_run_setting_reaches_the_job(jobs, name):
    submitted = jobs[name]
    options = submitted.job.options
    # what beam_args adds for a local run (--workers 4 was given), named from beam_args itself
    local_only = {a[2:].split("=")[0] for a in beam_args([], workers=4) if "runner" not in a}
    assert local_only == {"direct_running_mode", "direct_num_workers"}
    assert not local_only & set(options.get_all_options(drop_default=True))
    # the options workers receive, built by Beam's own Dataflow client code: Beam's defaults only
    env = apiclient.Environment(
        packages=[],
        options=options,
        environment_version="8",
        proto_pipeline_staged_url="gs://my-bucket/staging/pipeline.pb",
        proto_pipeline=submitted.job.proto_pipeline,
    ).proto
    worker_options = json.loads(type(env).to_json(env))["sdkPipelineOptions"]["options"]
    defaults = beam.options.pipeline_options.PipelineOptions([]).get_all_options()
    assert {k: worker_options.get(k) for k in local_only} == {k: defaults[k] for k in local_only}
    blob = json.dumps(worker_options) + str(submitted.job.proto_pipeline.SerializeToString())
    assert not [k for k in WORKER_MALLOC_ENV if k in blob]
    # and the launching process was not tuned while it built the job
    assert not set(WORKER_MALLOC_ENV) & (set(submitted.environ) - set(os.environ))
    assert submitted.gc_threshold != RUNNER_GC_THRESHOLD


# the staged package on a worker


class _LocalStager(Stager):
    """Beam's stager with a local folder for Dataflow's bucket."""

    def stage_artifact(self, local_path_to_artifact, artifact_name, sha256):
        Path(artifact_name).parent.mkdir(parents=True, exist_ok=True)
        Path(artifact_name).write_bytes(Path(local_path_to_artifact).read_bytes())

    def commit_manifest(self):
        pass


def _stage(job, folder: Path) -> Path:
    """What the job's environment says to stage (the package built from --setup_file, the main
    session), staged into `folder` by Beam's stager, under the names workers see."""
    artifacts = [
        dep
        for env in job.proto_pipeline.components.environments.values()
        for dep in env.dependencies
    ]
    _LocalStager().stage_job_resources(
        list(Stager.extract_staging_tuple_iter(artifacts)), str(folder)
    )
    return folder


def _requirements(sdist: Path) -> list[Requirement]:
    """The staged package's declared dependencies (its PKG-INFO), without the extras."""
    import tarfile

    with tarfile.open(sdist) as tar:
        info = next(
            m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("PKG-INFO")
        )
        headers = Parser().parsestr(tar.extractfile(info).read().decode())
    requirements = [Requirement(r) for r in headers.get_all("Requires-Dist")]
    return [r for r in requirements if not r.marker or r.marker.evaluate({"extra": ""})]


def _closure(requirements: list[Requirement]) -> list[metadata.Distribution]:
    """The installed distributions the requirements need, theirs included (extras followed)."""
    found, seen, todo = {}, set(), [(r, "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        dist = found.setdefault(name, metadata.distribution(name))
        for wanted in ("", *requirement.extras):
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                todo += [(Requirement(r), wanted) for r in dist.requires or []]
    return list(found.values())


def _link_site(dists: list[metadata.Distribution], target: Path) -> None:
    """A site folder of symlinks holding exactly `dists`: a folder is linked whole where no
    other installed distribution has files in it (google/ is shared: only google/protobuf goes)."""
    chosen = {(canonicalize_name(d.metadata["Name"]), str(d.locate_file(""))) for d in dists}
    owners: dict[tuple, set] = {}
    for dist in metadata.distributions():
        root = str(dist.locate_file(""))
        key = (canonicalize_name(dist.metadata["Name"]), root)
        for file in dist.files or ():
            parts = PurePosixPath(file).parts
            for i in range(1, len(parts)):
                owners.setdefault(parts[:i], set()).add(root if key in chosen else None)
    links = {}
    for dist in dists:
        root = Path(dist.locate_file(""))
        assert dist.files, f"{dist.metadata['Name']}: no RECORD, its files are unknown"
        for file in dist.files:
            parts = PurePosixPath(file).parts
            if parts[0] == ".." or "__pycache__" in parts:
                continue
            prefix = next(
                (parts[:i] for i in range(1, len(parts)) if owners[parts[:i]] == {str(root)}), parts
            )
            links.setdefault(prefix, root.joinpath(*prefix))
    for prefix, source in links.items():
        if source.exists():
            target.joinpath(*prefix).parent.mkdir(parents=True, exist_ok=True)
            target.joinpath(*prefix).symlink_to(source)


def _defined_fns() -> set[str]:
    """Every DoFn and CombineFn class of the job modules (mdeberta.pipelines.*)."""
    import importlib
    import inspect

    found = set()
    for info in pkgutil.walk_packages(mdeberta.pipelines.__path__, "mdeberta.pipelines."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == info.name:
                if issubclass(cls, (beam.DoFn, beam.CombineFn)):
                    found.add(cls.__qualname__)
    return found


def _worker_env(sdist: Path, folder: Path) -> str:
    """A fresh venv with the staged package and only its declared dependencies; its python.

    Dependencies cannot be downloaded here, so the ones this environment has are linked in (a
    .pth to a folder of symlinks, not the whole site-packages: nothing undeclared is there).
    The package itself is the staged sdist, built into a wheel (a worker builds it alike) and
    installed by pip with --no-deps."""
    deps = folder / "dependencies"
    _link_site(_closure(_requirements(sdist)), deps)
    assert (deps / "apache_beam").exists() and not (deps / "pytest").exists()
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder / "env")
    python = str(folder / "env" / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "declared-dependencies.pth").write_text(f"{deps}\n")
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    wheels = folder / "wheel"
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels)]
    subprocess.run([*pip, *build, str(sdist)], check=True)
    wheel = next(wheels.glob("mdeberta-*.whl"))
    install = ["--python", python, "install", "--no-deps", "--no-index"]
    subprocess.run([*pip, *install, str(wheel)], check=True)
    return python


def test_staged_package_runs_every_step_in_a_fresh_environment(jobs, tmp_path):
    staged = _stage(jobs["clean"].job, tmp_path / "staging")
    assert {"workflow.tar.gz", "pickled_main_session"} <= {p.name for p in staged.iterdir()}
    python = _worker_env(staged / "workflow.tar.gz", tmp_path)
    setup = jobs["clean"].job.options.view_as(beam.options.pipeline_options.SetupOptions)
    spec = {
        "pipelines": {},
        "main_session": str(staged / "pickled_main_session"),
        "pickle_library": setup.pickle_library,
    }
    for name, submitted in jobs.items():  # what Dataflow stages as pipeline.pb
        spec["pipelines"][name] = str(tmp_path / f"{name}.pb")
        Path(tmp_path / f"{name}.pb").write_bytes(submitted.job.proto_pipeline.SerializeToString())
    script = str(Path(__file__).with_name("dataflow_worker.py"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [python, script, json.dumps(spec)], capture_output=True, text=True, cwd=tmp_path,
        env=environ,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    worker = json.loads(done.stdout.strip().splitlines()[-1])

    # every module came from the installed package, none from this checkout
    assert all(f is None or f.startswith(worker["prefix"]) for f in worker["files"].values())
    assert {"mdeberta.pipelines.clean", "mdeberta.pipelines.pack"} <= set(worker["files"])
    # every DoFn and CombineFn class the job modules define was rebuilt, set up and re-pickled
    # (ApplySampling's _SampleFn is in no job: sample-vocab and shard draw inside their reading)
    loaded = {n.split(":")[0] for names in worker["names"].values() for n in names}
    assert _defined_fns() - loaded <= {"_SampleFn"}, _defined_fns() - loaded
    # the training stack never loads on a worker
    assert not {"torch", "transformers", "datasets", "matplotlib"} & set(worker["distributions"])
