"""Suite-wide guard: the repository root is on sys.path while tests run (they import `tests.*`),
which would let code import a stage folder by its bare name (`train`, `eval`, ...) and pass here
while failing where the package is installed. Those names are refused, so such code fails here."""

import importlib.abc
import sys

STAGE_FOLDERS = ("pipelines", "vocab", "train", "eval")


class _RefuseBareStageNames(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in STAGE_FOLDERS:
            raise ImportError(
                f"import mdeberta.{fullname}, not {fullname}: the stages install "
                "under the mdeberta package"
            )
        return None


sys.meta_path.insert(0, _RefuseBareStageNames())
