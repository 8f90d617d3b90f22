"""ml-intern's sitecustomize: after a successful non-PR push to main made through huggingface_hub (HfApi
upload_file, upload_folder, create_commit and the module-level functions), or a create_repo that made a new
repo (exist_ok=False), tag the repo's card and list it in the thread's collection (see
ml_intern/tools/hub/provenance.py). It never breaks the program it runs in:
every failure is swallowed (one line on stderr at most), and huggingface_hub is patched only when the program
imports it. Settings: ML_INTERN_PROVENANCE_TAG ("1"/"0"), ML_INTERN_COLLECTION (a title, or empty).
"""

import functools
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
PATCHED = ("create_repo", "upload_file", "upload_folder", "create_commit")
_state = threading.local()  # .busy: inside a patched call (nested ones and our own README commit skip)
_warned = []


def _warn(why):
    """Say once on stderr that provenance failed (`why`: an exception or a note); never raise."""
    try:
        if not _warned:
            _warned.append(True)
            why = why if isinstance(why, str) else type(why).__name__
            sys.stderr.write(f"[ml-intern provenance skipped: {why}]\n")
    except Exception:
        pass


@functools.lru_cache(maxsize=1)
def _provenance():
    """The provenance module (loaded once: its caches keep the collection and the repos listed in it): next to
    this file in a job, the package's own in local bash."""
    for path in (os.path.join(HERE, "_ml_intern_provenance.py"), os.path.join(HERE, "..", "provenance.py")):
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("_ml_intern_provenance", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError("ml-intern provenance module not found")


def _target(name, bound, result):
    """(repo_id, repo_type) a successful call created or pushed to main, or None (PRs, branches, futures,
    create_repo(exist_ok=True): the repo may not be new)."""
    args = bound.arguments
    if name == "create_repo":  # exist_ok=True may have found someone's repo (then a PR push): not ours to tag
        if args.get("exist_ok"):
            return None
        return getattr(result, "repo_id", None), getattr(result, "repo_type", None) or "model"
    if args.get("create_pr") or args.get("revision") not in (None, "main", "refs/heads/main"):
        return None
    if getattr(result, "pr_url", None) or not hasattr(result, "commit_url"):
        return None
    return args.get("repo_id"), args.get("repo_type") or "model"


def _register(api, name, bound, result):
    """Register the pushed repo; failures swallowed."""
    try:
        target = _target(name, bound, result)
        if not target or not target[0] or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
            return
        tag = os.environ.get("ML_INTERN_PROVENANCE_TAG", "1") != "0"
        collection = os.environ.get("ML_INTERN_COLLECTION", "")
        if tag or collection:
            note = _provenance().register(api, target[0], target[1], tag=tag, collection=collection)
            if note:
                _warn(note)
    except Exception as error:
        _warn(error)


def _wrap(name, original):
    """`original` followed by the registration of what it pushed."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def patched(self, *args, **kwargs):
        if getattr(_state, "busy", False):
            return original(self, *args, **kwargs)
        _state.busy = True
        try:
            result = original(self, *args, **kwargs)
            try:
                bound = signature.bind(self, *args, **kwargs)
                token = bound.arguments.get("token")
                api = self if token is None else type(self)(endpoint=self.endpoint, token=token)
                _register(api, name, bound, result)
            except Exception as error:
                _warn(error)
            return result
        finally:
            _state.busy = False

    return patched


def _patch(module):
    """Patch huggingface_hub.hf_api's HfApi and rebind its module-level functions."""
    try:
        for name in PATCHED:
            setattr(module.HfApi, name, _wrap(name, getattr(module.HfApi, name)))
            setattr(module, name, getattr(module.api, name))
    except Exception as error:
        _warn(error)


class _Hook:
    """Finds huggingface_hub.hf_api once and patches it right after it is executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "huggingface_hub.hf_api":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def _chain():
    """Run the sitecustomize this one hides on sys.path (e.g. a distribution's), if any; sys.path is left as
    it makes it (site.addsitedir and the like)."""
    ours = sys.modules.get("sitecustomize")
    mine = os.path.realpath(HERE)
    try:
        path = [p for p in sys.path if os.path.realpath(p or ".") != mine]
        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
        if (
            spec is None
            or spec.loader is None
            or os.path.realpath(spec.origin or "") == os.path.realpath(__file__)
        ):
            return
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module  # as a plain import would have it while it runs
        spec.loader.exec_module(module)
    except Exception as error:
        _warn(error)
    finally:
        if ours is not None:
            sys.modules["sitecustomize"] = ours


try:
    if "huggingface_hub.hf_api" in sys.modules:
        _patch(sys.modules["huggingface_hub.hf_api"])
    else:
        sys.meta_path.insert(0, _Hook())
    _chain()
except Exception as _error:
    _warn(_error)
