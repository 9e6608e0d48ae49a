"""A small stand-in for the Hugging Face Hub, enough for `datasets.load_dataset(id, streaming=True)` and
`HfApi.dataset_info`: dataset info, revision info, tree listings and file downloads, on a free local port.

Point a process at it with HF_ENDPOINT=<url> (the Hugging Face libraries read it when they are imported, so it
serves processes started by the tests). Dataset "<owner>/unreachable" drops the connection without answering,
like a network that is down; unknown datasets answer 404 as the Hub does."""
from __future__ import annotations

from tests.fakes.local_server import LocalServer

SHA = "0123456789abcdef0123456789abcdef01234567"


class HubServer(LocalServer):
    METHODS = ("GET", "HEAD")

    def __init__(self, datasets: dict[str, dict[str, bytes]]):
        """`datasets` maps "owner/name" to its files ({"data/train.jsonl": b"..."})."""
        super().__init__()
        self.datasets = datasets
        self.requests: list[str] = []

    def _not_found(self, handler):
        self._send(handler, 404, {"error": "Repository not found"}, headers={"X-Error-Code": "RepoNotFound"})

    def _handle(self, handler):
        self.requests.append(f"{handler.command} {handler.path}")
        path, _, query = handler.path.partition("?")
        for repo_id, files in self.datasets.items():
            api = f"/api/datasets/{repo_id}"
            if path in (api, f"{api}/revision/main", f"{api}/revision/{SHA}"):
                return self._send(handler, 200, {"id": repo_id, "sha": SHA, "private": False, "tags": [], "cardData": {},
                                                 "siblings": [{"rfilename": name} for name in files]})
            if path.startswith(f"{api}/tree/"):
                return self._send(handler, 200, self._tree(files, path[len(f"{api}/tree/"):], "recursive=true" in query.lower()))
            resolve = f"/datasets/{repo_id}/resolve/"
            if path.startswith(resolve):
                name = path[len(resolve):].split("/", 1)[1]
                if name in files:
                    return self._send(handler, 200, files[name], content_type="application/octet-stream",
                                      headers={"X-Repo-Commit": SHA, "ETag": f'"{len(files[name])}"', "Accept-Ranges": "bytes"})
                return self._send(handler, 404, {"error": "Entry not found"}, headers={"X-Error-Code": "EntryNotFound"})
        if "/unreachable" in path:
            # Close without a word: what a client sees when the network drops the connection.
            handler.close_connection = True
            handler.connection.close()
            return
        self._not_found(handler)

    @staticmethod
    def _tree(files: dict[str, bytes], revision_and_folder: str, recursive: bool) -> list[dict]:
        folder = revision_and_folder.split("/", 1)[1] if "/" in revision_and_folder else ""
        entries = {}
        for name, data in files.items():
            if folder and not name.startswith(folder + "/"):
                continue
            relative = name[len(folder) + 1:] if folder else name
            if "/" in relative and not recursive:
                directory = f"{folder}/{relative.split('/')[0]}" if folder else relative.split("/")[0]
                entries[directory] = {"type": "directory", "path": directory, "oid": "d" * 40}
            else:
                entries[name] = {"type": "file", "path": name, "size": len(data), "oid": "f" * 40}
        return list(entries.values())
