"""Run by test_dataflow.py inside the fresh environment that stands for a Dataflow worker.

    python dataflow_worker.py '{"pipelines": {job: pipeline.pb}, "main_session": path,
                               "pickle_library": name}'

Rebuilds, from each pipeline proto, what a worker's bundle processor rebuilds (coders, window
functions, DoFns, CombineFns, side-input view functions) with Beam's own decoders, pickles each
back and unpickles it again, and calls setup() (a DoFn's lazy imports and models load there).
Then imports every module of mdeberta.pipelines. Prints one JSON line: the names of what it
rebuilt per job, the distributions imported by then, where each mdeberta module came from.
Imports only what the environment has: the installed package and its declared dependencies.
"""

import importlib
import json
import pkgutil
import sys
from importlib.metadata import packages_distributions

import apache_beam as beam
from apache_beam.internal import pickler
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2 as pb
from apache_beam.pvalue import SideInputData
from apache_beam.runners.pipeline_context import PipelineContext

COMBINES = {
    common_urns.composites.COMBINE_PER_KEY.urn,
    common_urns.composites.COMBINE_GLOBALLY.urn,
    *(v.urn for k, v in vars(common_urns.combine_components).items() if k.isupper()),
}


def functions(proto: pb.Pipeline):
    """Every user function of the graph, decoded as the worker decodes it."""
    context = PipelineContext(proto.components)
    for coder_id in proto.components.coders:
        yield context.coders.get_by_id(coder_id)
    for strategy_id in proto.components.windowing_strategies:
        yield context.windowing_strategies.get_by_id(strategy_id).windowfn
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = pb.ParDoPayload.FromString(transform.spec.payload)
            if payload.do_fn.urn == python_urns.PICKLED_DOFN_INFO:  # not Beam's built-in ones
                yield pickler.loads(payload.do_fn.payload)[0]
            for side in payload.side_inputs.values():
                yield SideInputData.from_runner_api(side, context).view_fn
        elif transform.spec.urn in COMBINES:
            payload = pb.CombinePayload.FromString(transform.spec.payload)
            yield beam.CombineFn.from_runner_api(payload.combine_fn, context)


def main(spec: dict) -> dict:
    pickler.set_library(spec["pickle_library"])  # as sdk_worker_main does, then the session
    pickler.load_session(spec["main_session"])
    names = {}
    for job, path in spec["pipelines"].items():
        with open(path, "rb") as f:
            proto = pb.Pipeline.FromString(f.read())
        for fn in functions(proto):
            pickler.loads(pickler.dumps(fn))
            if isinstance(fn, (beam.DoFn, beam.CombineFn)):
                fn.setup()
                fn.teardown()
            wrapped = getattr(fn, "_fn", None)  # Map / FlatMap: the function itself
            suffix = f":{wrapped.__qualname__}" if callable(wrapped) else ""
            names.setdefault(job, []).append(type(fn).__qualname__ + suffix)
    owners = packages_distributions()
    tops = {name.split(".")[0] for name in sys.modules}
    distributions = sorted({d for top in tops for d in owners.get(top, ())})
    import mdeberta.pipelines

    for module in pkgutil.walk_packages(mdeberta.pipelines.__path__, "mdeberta.pipelines."):
        importlib.import_module(module.name)
    files = {
        name: getattr(module, "__file__", None)
        for name, module in sys.modules.items()
        if name.startswith("mdeberta")
    }
    return {"names": names, "distributions": distributions, "files": files, "prefix": sys.prefix}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
