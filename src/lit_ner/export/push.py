"""An export up to the Hugging Face Hub (`fit --push_to_hub`, `export --push_to_hub`)."""

from __future__ import annotations

from pathlib import Path

from lit_ner.errors import LitNerError
from lit_ner.hub import first_line, is_unreachable


def push_to_hub(directory: str | Path, repo_id: str, private: bool = True) -> str:
    """Uploads an export folder to a Hub model repo (created if needed); a `LitNerError` naming
    the local copy when the Hub cannot be reached or refuses."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(directory), repo_id=repo_id, repo_type="model")
    except Exception as exc:  # network, token, permission: all leave the export where it is
        reason = "the Hub cannot be reached" if is_unreachable(exc) else first_line(exc)
        raise LitNerError(
            f"push to the Hub repo '{repo_id}' failed ({reason}); the export stays at {directory}"
        ) from exc
    return str(getattr(commit, "commit_url", commit))
