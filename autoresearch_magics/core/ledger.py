"""Every git operation of a campaign, in one place. Functions return plain data.

Experiments run in place, in the researcher's own checkout, and touch only the campaign's
editable files (train.py by default): commits are made with `git commit --only <files>`, and a
revert moves the branch back with `git reset --soft` and restores just those files. Anything
else the researcher has modified, staged or left untracked is never reset, stashed or
committed. Every experiment commit also gets a ref `refs/autoresearch/<tag>/<N>`, so a
discarded one stays reachable.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import git

from .errors import CampaignError, WrongBranch
from .paths import UNTRACKED_PATTERNS

# Used only when neither the repository nor the user configured an identity.
FALLBACK_NAME = "autoresearch"
FALLBACK_EMAIL = "autoresearch@localhost"
_FULL_SHA = re.compile(r"[0-9a-f]{40}")


def experiment_ref(tag: str, number: int) -> str:
    """Returns the ref that keeps experiment `number` of campaign `tag` reachable."""
    return f"refs/autoresearch/{tag}/{number}"


class Ledger:
    """Git access for one campaign folder."""

    def __init__(self, root) -> None:
        self.root = Path(root)
        try:
            self.repo = git.Repo(self.root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise CampaignError(f"{self.root} is not a git repository: run `autoresearch init {self.root} --tag TAG`") from None
        self._env = None
        self._cmd = git.Git(str(self.root))  # runs in the campaign folder: paths are relative to it

    # -- set-up ------------------------------------------------------------------------------
    @staticmethod
    def init_repo(root, own: bool = False) -> "Ledger":
        """Returns a Ledger for `root`, creating a repository there when there is none (or, with
        `own`, when `root` is not already a repository's top level)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        try:
            repo = git.Repo(root, search_parent_directories=True)
            inside = not own or Path(repo.working_tree_dir).resolve() == root.resolve()
        except git.InvalidGitRepositoryError:
            inside = False
        if not inside:
            git.Repo.init(root, initial_branch="main")
        return Ledger(root)

    def exclude_campaign_files(self) -> None:
        """Adds the campaign's untracked files to .git/info/exclude (never the user's .gitignore)."""
        common = Path(self._git("rev-parse", "--git-common-dir"))
        if not common.is_absolute():
            common = self.root / common
        exclude = common / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        existing = exclude.read_text().splitlines() if exclude.exists() else []
        prefix = os.path.relpath(self.root, self.repo.working_tree_dir)
        prefix = "" if prefix == "." else "/" + prefix.replace(os.sep, "/")
        wanted = [prefix + pat if pat.startswith("/") else pat for pat in UNTRACKED_PATTERNS]
        missing = [line for line in wanted if line not in existing]
        if missing:
            with open(exclude, "a") as fh:
                fh.write("".join(line + "\n" for line in ["# autoresearch campaign files", *missing]))

    def _git_env(self) -> dict:
        """Returns environment overrides that supply an identity when git has none."""
        if self._env is None:
            try:  # git's own answer honours every config source and environment variable
                self._cmd.execute(["git", "var", "GIT_COMMITTER_IDENT"])
                self._cmd.execute(["git", "var", "GIT_AUTHOR_IDENT"])
                self._env = {}
            except git.GitCommandError:
                self._env = {"GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME") or FALLBACK_NAME,
                             "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL") or FALLBACK_EMAIL,
                             "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME") or FALLBACK_NAME,
                             "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL") or FALLBACK_EMAIL}
        return self._env

    def _git(self, *args, strip: bool = True) -> str:
        return self._cmd.execute(["git", *args], env={**os.environ, **self._git_env()},
                                 strip_newline_in_stdout=strip)

    # -- reading -----------------------------------------------------------------------------
    def has_commits(self) -> bool:
        """Returns True when HEAD points at a commit."""
        try:
            self.repo.head.commit
            return True
        except ValueError:
            return False

    def current_branch(self) -> str | None:
        """Returns the checked-out branch name, or None when HEAD is detached."""
        try:
            return self.repo.active_branch.name
        except TypeError:
            return None

    def branch_exists(self, branch: str) -> bool:
        """Returns True when a local branch of that name exists."""
        return branch in [h.name for h in self.repo.heads]

    def tip(self, ref: str = "HEAD") -> str:
        """Returns the full sha `ref` points at."""
        if ref == "HEAD":  # read from the ref files, no git process: this is on every experiment's path
            return self.repo.head.commit.hexsha
        return self._git("rev-parse", "--verify", f"{ref}^{{commit}}")

    def resolve(self, ref: str) -> str | None:
        """Returns the full sha of `ref`, or None when it does not exist."""
        try:
            return self.tip(ref)
        except git.GitCommandError:
            return None

    def changed_paths(self, paths: list[str], against: str = "HEAD") -> list[str]:
        """Returns which of `paths` differ between the working tree and `against`."""
        out = self._git("diff", "--name-only", against, "--", *paths)
        return sorted(set(out.split()) | set(self.untracked(paths)))

    def untracked(self, paths: list[str]) -> list[str]:
        """Returns which of `paths` git does not track yet (ignored files excluded)."""
        if not paths:
            return []
        return self._git("ls-files", "--others", "--exclude-standard", "--", *paths).split()

    def dirty_paths(self) -> list[str]:
        """Returns every path with uncommitted changes (untracked files included)."""
        out = self._git("status", "--porcelain", "--untracked-files=all")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def dirty_paths_here(self) -> list[str]:
        """Returns paths (relative to the campaign folder) that differ from HEAD, untracked included."""
        out = self._git("status", "--porcelain", "--untracked-files=all", "--", ".")
        prefix = self._git("rev-parse", "--show-prefix")
        paths = []
        for line in out.splitlines():
            path = line[3:].split(" -> ")[-1].strip('"')
            paths.append(path[len(prefix):] if prefix and path.startswith(prefix) else path)
        return paths

    def read_file(self, ref: str, path: str) -> str:
        """Returns the content of `path` at `ref`."""
        return self._git("show", f"{ref}:./{path}", strip=False)

    def files_at(self, ref: str, paths: list[str]) -> dict[str, str | None]:
        """Returns {path: text at `ref`, or None where `ref` has no such file}; reads the object store
        through one long-lived git process, so hundreds of commits take well under a second."""
        if "_prefix" not in self.__dict__:
            self._prefix = self._git("rev-parse", "--show-prefix")
        commit = git.Commit(self.repo, bytes.fromhex(ref)) if _FULL_SHA.fullmatch(ref) else self.repo.commit(ref)
        tree = commit.tree  # a full sha is read as it is: no lookup process per commit
        found: dict[str, str | None] = {}
        for path in paths:
            try:
                blob = tree / (self._prefix + path)
            except KeyError:
                found[path] = None
                continue
            found[path] = blob.data_stream.read().decode("utf-8", errors="replace") if blob.type == "blob" else None
        return found

    def read_file_if_present(self, ref: str, path: str) -> str | None:
        """Returns the content of `path` (campaign-relative) at `ref`, or None when that commit lacks it."""
        prefix = os.path.relpath(self.root.resolve(), Path(self.repo.working_tree_dir).resolve())
        inside = path if prefix == "." else f"{prefix.replace(os.sep, '/')}/{path}"
        try:
            blob = self.repo.commit(ref).tree / inside
        except KeyError:
            return None
        return blob.data_stream.read().decode("utf-8", errors="surrogateescape")

    def diff(self, base: str, target: str, paths: list[str] | None = None) -> str:
        """Returns the unified diff from `base` to `target`."""
        return self._git("diff", base, target, "--", *(paths or []))

    def parent(self, ref: str) -> str | None:
        """Returns the first parent's sha of `ref`, or None for a root commit."""
        parents = self.repo.commit(ref).parents
        return parents[0].hexsha if parents else None

    def experiment_refs(self, tag: str) -> dict[int, str]:
        """Returns {experiment number: sha} of every experiment ref of `tag`."""
        out = self._git("for-each-ref", "--format=%(refname) %(objectname)", f"refs/autoresearch/{tag}/")
        refs = {}
        for line in out.splitlines():
            name, sha = line.split()
            tail = name.rsplit("/", 1)[-1]
            if tail.isdigit():
                refs[int(tail)] = sha
        return refs

    # -- changing ----------------------------------------------------------------------------
    def ensure_on_branch(self, branch: str) -> None:
        """Checks out `branch`, creating it at HEAD; uncommitted changes are carried along, never reset."""
        if self.current_branch() == branch:
            return
        try:
            if self.branch_exists(branch):
                self._git("checkout", branch)
            else:
                self._git("checkout", "-b", branch)
        except git.GitCommandError as exc:
            raise CampaignError(
                f"cannot switch to {branch}: {exc.stderr.strip()}\n"
                f"Commit or move the conflicting changes, then run init again.") from None

    def check_on_branch(self, branch: str) -> None:
        """Raises WrongBranch unless `branch` is checked out."""
        current = self.current_branch()
        if current != branch:
            raise WrongBranch(
                f"the working copy is on {current or 'a detached HEAD'}, but this campaign runs on "
                f"{branch}: run `git checkout {branch}` (or init a new campaign with another --tag)")

    def commit_files(self, paths: list[str], message: str) -> str | None:
        """Commits only `paths` as they are in the working tree; returns the new sha, or None when
        they match HEAD already. Other staged or modified files are left exactly as they are."""
        if not self.has_commits():
            self._git("add", "--", *paths)
            self._git("commit", "--no-verify", "-q", "-m", message)
            return self.tip()
        try:  # the common case in one git call: tracked files, changed
            self._git("commit", "--no-verify", "-q", "-m", message, "--only", "--", *paths)
        except git.GitCommandError as exc:
            if "did not match any file" in (exc.stderr or ""):
                present = [p for p in paths if (self.root / p).exists()]
                self._git("add", "--", *present)
                return self.commit_files(present, message)
            if not self.changed_paths(paths):  # git's wording varies (and is translated): ask it plainly
                return None
            raise
        return self.tip()

    def commit_content(self, parent: str, files: dict[str, str], message: str) -> str:
        """Returns a new commit: `parent` with `files` (path -> text) replaced. Touches neither the
        working tree, the index nor any branch (for candidates that run elsewhere, in parallel)."""
        import tempfile
        prefix = self._git("rev-parse", "--show-prefix")
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, **self._git_env(), "GIT_INDEX_FILE": os.path.join(tmp, "index")}

            def run(*args, stdin=None):
                return self._cmd.execute(["git", *args], env=env, istream=stdin)

            run("read-tree", parent)
            for path, text in files.items():
                blob_file = os.path.join(tmp, "blob")
                with open(blob_file, "w") as fh:
                    fh.write(text)
                blob = run("hash-object", "-w", "--path", path, blob_file)
                run("update-index", "--add", "--cacheinfo", f"100644,{blob},{prefix}{path}")
            tree = run("write-tree")
            return run("commit-tree", tree, "-p", parent, "-m", message)

    def set_ref(self, ref: str, sha: str) -> None:
        """Points `ref` at `sha`."""
        git.Reference.create(self.repo, ref, sha, force=True)

    def move_branch(self, sha: str) -> None:
        """Points the checked-out branch at `sha` (like `git reset --soft`); the working tree stays as it is."""
        self.repo.head.reference.set_commit(sha)

    def write_files_from(self, ref: str, paths: list[str]) -> None:
        """Overwrites `paths` in the working tree and the index with their content at `ref`."""
        self._git("checkout", ref, "--", *paths)

    def export_tree(self, ref: str, dest) -> None:
        """Writes the campaign folder's tracked files at `ref` into `dest` (plain files, no repository)."""
        import tarfile
        import tempfile
        with tempfile.TemporaryFile() as archive:
            self._cmd.execute(["git", "archive", "--format=tar", ref], output_stream=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(dest, filter="tar")

    def is_tracked(self, path) -> bool:
        """Returns True when git tracks `path` (False for a path outside the repository)."""
        try:
            return bool(self._git("ls-files", "--", str(path)))
        except git.GitCommandError:
            return False

    def sync_index(self, paths: list[str]) -> None:
        """Sets the index entries of `paths` to HEAD's, leaving the working tree alone (after a branch move)."""
        if paths:
            self._git("reset", "-q", "HEAD", "--", *paths)
