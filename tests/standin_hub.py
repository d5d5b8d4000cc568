"""A stand-in Hugging Face Hub: a small local HTTP server that answers the few routes
`huggingface_hub`, `transformers` and `datasets` call to download a model or a data set, so that a
test can run the Hub path of lit_ner (`configs/wnut.yaml`: a model id and a data set id) through
the libraries' own download and cache code, with no network.

Point the libraries at it with `HF_ENDPOINT=http://127.0.0.1:PORT` (and `HF_HUB_OFFLINE=0`), set
before they are imported: in practice, in the environment of a subprocess.

Repositories are plain folders on disk, one folder per revision:

    ROOT/models/NAMESPACE/NAME/main/...                       a model repository's files
    ROOT/datasets/NAMESPACE/NAME/main/...                     a data set repository's files
    ROOT/datasets/NAMESPACE/NAME/refs/convert/parquet/...     its `refs/convert/parquet` revision

A revision is `main` or, as on the Hub, `refs/KIND/NAME` (`refs/convert/parquet`, `refs/pr/1`).
Each revision has a fixed fake commit sha (`commit_sha`), which is also accepted as a revision.

Routes (everything else is answered 404 and, like every request, logged in `StandinHub.requests`):

    GET  /api/{models|datasets}/NS/NAME[/revision/REV]        repository info (sha, siblings)
    GET  /api/{models|datasets}/NS/NAME/tree/REV[/PATH]       folder listing (?recursive=true)
    POST /api/{models|datasets}/NS/NAME/paths-info/REV        the entries of the form's `paths`
    HEAD|GET /NS/NAME/resolve/REV/FILE                        a model repository's file
    HEAD|GET /datasets/NS/NAME/resolve/REV/FILE               a data set repository's file

REV arrives URL-encoded (`refs%2Fconvert%2Fparquet`). A file answers with the headers the Hub
sends and `huggingface_hub.file_download` reads: `X-Repo-Commit`, `ETag` (the git blob sha1), and
for files the Hub keeps in LFS (by extension, `LFS_SUFFIXES`) `X-Linked-Etag` (the sha256) and
`X-Linked-Size`; a one-range `Range` header gets 206 and the bytes asked for. A missing file
answers 404 with `X-Error-Code: EntryNotFound` and `X-Repo-Commit`, as the Hub does: the libraries
probe many optional files and cache their absence. A missing revision answers 404
`RevisionNotFound`, a missing repository 401 `RepoNotFound`, again as the Hub. There are no
redirects, no Xet, no pagination (one page holds any listing) and no `expand=true` details (last
commit, security scan). The server keeps no state beyond the folders and the request log.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset"}
# Files the Hub stores in LFS: a HEAD answer gives their sha256 as X-Linked-Etag, which
# huggingface_hub prefers to ETag (the git blob id) and names the cached blob after.
LFS_SUFFIXES = (".safetensors", ".bin", ".parquet", ".arrow", ".onnx", ".h5", ".msgpack")
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"


def commit_sha(repo_type: str, repo_id: str, revision: str) -> str:
    """The fixed fake commit sha of a repository's revision (40 hex digits, as the Hub's)."""
    return hashlib.sha1(f"{repo_type}/{repo_id}@{revision}".encode()).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content: what the Hub reports as a file's `oid` and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Request:
    """One request the stand-in hub received, for a test to read."""

    method: str
    path: str  # as sent: a revision's slashes are %2F
    query: dict[str, list[str]]
    range: str | None
    status: int

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, values in self.query.items() for v in values)
        extra = f" Range: {self.range}" if self.range else ""
        return f"{self.method} {self.path}{'?' + query if query else ''}{extra} -> {self.status}"


@dataclass
class Revision:
    """A repository's revision found on disk: its folder and commit sha."""

    repo_type: str  # "model" or "dataset"
    repo_id: str
    name: str
    folder: Path
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha = commit_sha(self.repo_type, self.repo_id, self.name)

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def entry(self, path: str) -> dict | None:
        """The Hub's tree entry of a file or folder (None if there is none)."""
        target = self.folder / path
        if not path or ".." in path.split("/") or not target.exists():
            return None
        if target.is_dir():  # a folder's oid is its git tree id on the Hub; any stable id will do
            return {"type": "directory", "oid": git_blob_sha1(path.encode()), "size": 0, "path": path}
        data = target.read_bytes()
        entry = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


class StandinHub:
    """The server over the folders under `root`; `requests` logs every request it gets."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the stand-in hub is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandinHub:
        hub = self

        class Handler(StandinHubHandler):
            standin = hub

        # Port 0: the system picks a free one, so tests never collide.
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the port: a client then gets "connection refused". Kept-alive
        connections are closed too, or a client's pooled connection would still be answered."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None
            with self._lock:
                for connection in self._connections:
                    with suppress(OSError):  # the client may have closed it already
                        connection.shutdown(socket.SHUT_RDWR)
                self._connections.clear()

    def connected(self, connection: socket.socket, is_open: bool) -> None:
        with self._lock:
            (self._connections.add if is_open else self._connections.discard)(connection)

    def log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def fetched(self) -> list[str]:
        """The paths of the files served whole or in part by GET (not HEAD, not the API)."""
        with self._lock:
            return [r.path for r in self.requests if r.method == "GET" and r.status in (200, 206)]

    def revision(self, repo_type: str, repo_id: str, revision: str) -> Revision | None:
        """The revision `revision` (a name or a commit sha) of a repository, if it is on disk."""
        repo_dir = self.root / f"{repo_type}s" / repo_id
        if not self.repo_exists(repo_type, repo_id):
            return None
        names = ["main"] if (repo_dir / "main").is_dir() else []
        names += sorted(p.relative_to(repo_dir).as_posix() for p in repo_dir.glob("refs/*/*") if p.is_dir())
        for name in names:
            found = Revision(repo_type, repo_id, name, repo_dir / name)
            if revision in (name, found.sha):
                return found
        return None

    def repo_exists(self, repo_type: str, repo_id: str) -> bool:
        parts = repo_id.split("/")
        well_formed = len(parts) == 2 and not {"", ".", ".."} & set(parts)
        return well_formed and (self.root / f"{repo_type}s" / repo_id).is_dir()


@contextmanager
def standin_hub(root: str | Path) -> Iterator[StandinHub]:
    """A running stand-in hub over `root`, stopped on exit."""
    hub = StandinHub(root).start()
    try:
        yield hub
    finally:
        hub.stop()


class StandinHubHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests; `standin` is the hub whose folders it serves."""

    standin: StandinHub
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub: httpx reuses its connections
    timeout = 30  # an idle kept-alive connection's thread ends after this

    def setup(self) -> None:
        super().setup()
        self.standin.connected(self.connection, True)

    def finish(self) -> None:
        self.standin.connected(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args) -> None:
        pass  # the request log replaces the stderr lines

    def do_HEAD(self) -> None:
        self.route("HEAD")

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def route(self, method: str) -> None:
        split = urlsplit(self.path)
        # Split before decoding: a revision is one segment, its slashes encoded as %2F.
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        query = parse_qs(split.query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = self.answer(method, segments, query, body)
        self.standin.log(Request(method, split.path, query, self.headers.get("Range"), status))

    def answer(self, method: str, segments: list[str], query: dict, body: bytes) -> int:
        if segments[:1] == ["api"] and len(segments) >= 4 and segments[1] in REPO_TYPES:
            repo_type, repo_id, rest = REPO_TYPES[segments[1]], "/".join(segments[2:4]), segments[4:]
            if method == "GET" and not rest:
                return self.repo_info(repo_type, repo_id, "main")
            if method == "GET" and len(rest) == 2 and rest[0] == "revision":
                return self.repo_info(repo_type, repo_id, rest[1])
            if method == "GET" and len(rest) >= 2 and rest[0] == "tree":
                return self.tree(repo_type, repo_id, rest[1], "/".join(rest[2:]), query)
            if method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
                return self.paths_info(repo_type, repo_id, rest[1], parse_qs(body.decode()))
        elif method in ("HEAD", "GET"):
            # A model's files are under /NS/NAME, a data set's under /datasets/NS/NAME.
            is_dataset = segments[:1] == ["datasets"]
            repo_type, rest = ("dataset", segments[1:]) if is_dataset else ("model", segments)
            if len(rest) >= 5 and rest[2] == "resolve":
                return self.resolve(method, repo_type, "/".join(rest[:2]), rest[3], "/".join(rest[4:]))
        return self.send_json({"error": "Not Found"}, 404)

    def find(self, repo_type: str, repo_id: str, revision: str) -> Revision | int:
        """The revision, or the error status already answered as the Hub answers it."""
        found = self.standin.revision(repo_type, repo_id, revision)
        if found is not None:
            return found
        if self.standin.repo_exists(repo_type, repo_id):
            error = {"X-Error-Code": "RevisionNotFound"}
            return self.send_json({"error": f"Invalid rev id: {revision}"}, 404, error)
        # The Hub answers 401, not 404, for a repository it does not show (missing or private).
        return self.send_json({"error": "Repository not found"}, 401, {"X-Error-Code": "RepoNotFound"})

    def repo_info(self, repo_type: str, repo_id: str, revision: str) -> int:
        found = self.find(repo_type, repo_id, revision)
        if isinstance(found, int):
            return found
        info = {
            "_id": found.sha[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": found.sha,
            "lastModified": LAST_MODIFIED,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": {},
            "siblings": [{"rfilename": name} for name in found.files()],
        }
        return self.send_json(info, 200)

    def tree(self, repo_type: str, repo_id: str, revision: str, path: str, query: dict) -> int:
        found = self.find(repo_type, repo_id, revision)
        if isinstance(found, int):
            return found
        folder = found.folder / path
        if path and (".." in path.split("/") or not folder.is_dir()):
            return self.send_json({"error": f"{path} does not exist"}, 404, {"X-Error-Code": "EntryNotFound"})
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        children = folder.rglob("*") if recursive else folder.iterdir()
        paths = sorted(p.relative_to(found.folder).as_posix() for p in children)
        return self.send_json([found.entry(p) for p in paths], 200)

    def paths_info(self, repo_type: str, repo_id: str, revision: str, form: dict) -> int:
        found = self.find(repo_type, repo_id, revision)
        if isinstance(found, int):
            return found
        entries = [found.entry(path.strip("/")) for path in form.get("paths", [])]
        return self.send_json([e for e in entries if e is not None], 200)

    def resolve(self, method: str, repo_type: str, repo_id: str, revision: str, path: str) -> int:
        found = self.find(repo_type, repo_id, revision)
        if isinstance(found, int):
            return found
        headers = {"X-Repo-Commit": found.sha}
        entry = found.entry(path)
        if entry is None or entry["type"] != "file":
            headers["X-Error-Code"] = "EntryNotFound"
            return self.send_json({"error": "Entry not found"}, 404, headers)
        data = (found.folder / path).read_bytes()
        headers["ETag"] = f'"{entry["oid"]}"'
        if "lfs" in entry:
            headers["X-Linked-Etag"] = f'"{entry["lfs"]["oid"]}"'
            headers["X-Linked-Size"] = str(entry["size"])
        status, start, end = 200, 0, len(data)
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[len("bytes=") :].partition("-")
            if first:
                start, end = int(first), min(int(last) + 1 if last else len(data), len(data))
            else:  # a suffix: the last N bytes
                start = max(len(data) - int(last), 0)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        return self.send(data[start:end], status, {"Accept-Ranges": "bytes", **headers})

    def send_json(self, value: object, status: int, headers: dict[str, str] | None = None) -> int:
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.send(json.dumps(value).encode(), status, headers)

    def send(self, data: bytes, status: int, headers: dict[str, str]) -> int:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":  # HEAD: the headers GET would send, Content-Length too, no body
            self.wfile.write(data)
        return status
