"""Tutorial materials cloned into the workspace on first start."""
from __future__ import annotations

import os
import shutil

from settings import Settings


def clone_command(s: Settings) -> list[str] | None:
    """`git clone` argv, or None when there is nothing to do (no URL, already there)."""
    if not s.materials_git_url:
        return None
    target = os.path.join(s.workspace, s.materials_dir)
    if os.path.exists(target):
        return None
    git = shutil.which('git')
    if git is None:
        return None
    return [git, 'clone', '--depth', '1', '--quiet', s.materials_git_url, target]
