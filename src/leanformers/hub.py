"""Repo id or folder -> local file paths. Downloads and the cache layout are huggingface_hub's; this module adds
the offline rules and errors that say what to do."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .errors import ResourceNotFoundError, UnsafePathError

# from_pretrained keywords that only say where files come from
HUB_KWARGS = frozenset({
    "cache_dir", "revision", "local_files_only", "token", "force_download", "subfolder", "proxies",
    "resume_download", "use_auth_token", "repo_type", "_commit_hash",
})
_REPO_ID = re.compile(r"^[\w.\-]+(/[\w.\-]+)?$")


def hub_cache_dir() -> str:
    """The hub cache folder, read from the environment at call time (HF_HUB_CACHE, then HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def looks_like_local_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or not _REPO_ID.match(name)


def resolve_file(path_or_repo, filename: str, *, cache_dir=None, revision=None, local_files_only=False, token=None,
                 subfolder: str = "", force_download=False, missing_ok=False, repo_type=None, **_ignored):
    """Local path of `filename` in a folder or hub repo; None when it is absent and `missing_ok`."""
    name = str(path_or_repo)
    safe_join("", filename)  # names may come from an index file: refuse any that leave the checkpoint
    if os.path.isdir(name):
        path = safe_join(os.path.join(name, subfolder) if subfolder else name, filename)
        if os.path.isfile(path):
            return path
        if missing_ok:
            return None
        raise ResourceNotFoundError(f"{name} has no file {os.path.join(subfolder, filename)}. "
                                    f"Check the folder, or pass the repo id of a checkpoint that has it.")
    if looks_like_local_path(name):
        raise ResourceNotFoundError(f"No folder {name}: it does not exist and is not a valid hub repo id "
                                    f"('org/name'). Check the path.")
    return _from_hub(name, filename, cache_dir=cache_dir, revision=revision, token=token, subfolder=subfolder,
                     local_files_only=local_files_only or is_offline(), force_download=force_download,
                     missing_ok=missing_ok, repo_type=repo_type)


def _from_hub(repo_id, filename, *, cache_dir, revision, token, subfolder, local_files_only, force_download,
              missing_ok, repo_type):
    import huggingface_hub
    from huggingface_hub import errors

    cache = str(cache_dir) if cache_dir is not None else hub_cache_dir()
    try:
        return huggingface_hub.hf_hub_download(
            repo_id, filename, subfolder=subfolder or None, repo_type=repo_type, revision=revision, cache_dir=cache,
            token=token, local_files_only=local_files_only, force_download=force_download,
            endpoint=os.environ.get("HF_ENDPOINT") or None, library_name="leanformers")
    except errors.LocalEntryNotFoundError as err:
        if missing_ok and (local_files_only or _repo_cached(repo_id, cache, repo_type)):
            return None
        why = "offline mode is on (local_files_only or HF_HUB_OFFLINE=1)" if local_files_only else \
            "the hub could not be reached"
        raise ResourceNotFoundError(
            f"Cannot find '{filename}' of repo '{repo_id}'{_rev(revision)} in the cache {cache}, and {why}. "
            f"Download it while online (`leanformers download {repo_id}`), set HF_ENDPOINT to a reachable mirror, "
            f"or pass a local folder.") from err
    except (errors.EntryNotFoundError, errors.RemoteEntryNotFoundError) as err:
        if missing_ok:
            return None
        raise ResourceNotFoundError(f"Repo '{repo_id}'{_rev(revision)} has no file '{filename}'.") from err
    except errors.RevisionNotFoundError as err:
        raise ResourceNotFoundError(f"Repo '{repo_id}' has no revision '{revision}'. Check the branch, tag or "
                                    f"commit name.") from err
    except errors.RepositoryNotFoundError as err:
        raise ResourceNotFoundError(f"'{repo_id}' is not a repo on the hub (or it is private: pass token=...). "
                                    f"For a local folder, check the path.") from err
    except errors.HFValidationError as err:
        raise ResourceNotFoundError(f"'{repo_id}' is neither a local folder nor a valid repo id.") from err
    except OSError as err:
        if err.errno not in _NO_ROOM:
            raise
        # huggingface_hub writes into a private .incomplete file and moves it into place only once complete, so
        # the cache holds no damaged copy that a later (offline) load would use
        raise ResourceNotFoundError(
            f"Cannot write '{filename}' of repo '{repo_id}' into the cache {cache}: {err.strerror or err}. Free "
            f"disk space, or point cache_dir= (or HF_HUB_CACHE) at a disk with room, and load again; the partial "
            f"download was not kept as the file.") from err


_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _repo_cached(repo_id, cache, repo_type) -> bool:
    prefix = {"dataset": "datasets", "space": "spaces"}.get(repo_type or "model", "models")
    return os.path.isdir(os.path.join(cache, f"{prefix}--{repo_id.replace('/', '--')}"))


def _rev(revision) -> str:
    return f" at revision '{revision}'" if revision else ""


def safe_join(folder, relative_name: str) -> str:
    """Join a file name read from a checkpoint to its folder, refusing names that would leave the folder."""
    if os.path.isabs(relative_name) or ".." in Path(relative_name).parts:
        raise UnsafePathError(
            f"Refusing file name {relative_name!r}: names read from a checkpoint must stay inside its folder. "
            f"The checkpoint's index or config is damaged or hostile; re-download it from a source you trust.")
    return os.path.join(folder, relative_name)
