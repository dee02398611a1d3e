"""The lake in object storage (S3, GCS, Azure Blob) through fsspec filesystems.

Object stores have no atomic rename, so a multi-file write cannot be published by
renaming a folder. Instead every partition folder carries a small commit log:

```
logs/okta/year=2026/month=11/day=28/hour=10/<batch>.parquet        data (unique names)
logs/okta/year=2026/month=11/day=28/hour=10/_commits/<commit>.json {"add": [...], "remove": [...]}
```

A data file is *live* when a commit adds it and no commit removes it. Readers that go
through :meth:`ObjectStorage.list` (DuckDB, Spark, the writer's dedup, stats) only
ever see live files, so:

* a writer uploads all its data files first and writes the commit markers last: a
  writer killed before its markers leaves files nobody reads (vacuumed later by
  ``mantissa lake compact``), and the re-run adds no duplicates because its dedup reads
  the live files only;
* compaction uploads the merged file and then writes one marker that adds it and
  removes the small files, so readers switch from the small files to the merged one in
  one PUT (a single object write is atomic on S3, GCS and Azure Blob).

Markers are immutable, so their contents are cached per process; most listings need
no GET at all after the first. Files whose names start with ``_`` or ``.`` are ignored by
Hive, Spark, Athena, BigQuery and Synapse alike, so the markers never show up as data.

Credentials come from each cloud's standard chain only (environment, profile, instance
role, workload identity): nothing secret is read from ``mantissa.yaml``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mantissa.errors import ConfigError, StorageError
from mantissa.lake.storage import ObjectInfo, Storage

COMMITS_DIR = "_commits"
#: Orphans (data files no commit names) younger than this are a writer in progress.
ORPHAN_GRACE_SECS = 3600

# scheme → (fsspec protocol, PyPI package, pip extra)
SCHEMES: dict[str, tuple[str, str, str]] = {
    "s3": ("s3", "s3fs", "aws"),
    "s3a": ("s3", "s3fs", "aws"),
    "gs": ("gcs", "gcsfs", "gcp"),
    "gcs": ("gcs", "gcsfs", "gcp"),
    "az": ("abfs", "adlfs", "azure"),
    "abfs": ("abfs", "adlfs", "azure"),
    "abfss": ("abfs", "adlfs", "azure"),
}

_ENGINE_SCHEMES = {"s3a": "s3", "gcs": "gs", "az": "abfs", "abfss": "abfs"}

# What to tell the user, per store (keyed by engine scheme).
_HINTS: dict[str, dict[str, str]] = {
    "s3": {
        "bucket": "bucket",
        "permission": "grant the process's role s3:ListBucket on the bucket and "
        "s3:GetObject/PutObject/DeleteObject on the lake prefix",
        "expired": "refresh them (aws sso login, or the instance role / web identity token) "
        "and retry",
        "credentials": "provide them through the AWS chain: AWS_ACCESS_KEY_ID/AWS_PROFILE, "
        "~/.aws, an instance role or web identity (IRSA)",
    },
    "gs": {
        "bucket": "bucket",
        "permission": "grant the service account roles/storage.objectAdmin (storage.objects."
        "list/get/create/delete) on the bucket",
        "expired": "refresh them (gcloud auth application-default login, or the service "
        "account key / workload identity) and retry",
        "credentials": "provide them through Google's chain: GOOGLE_APPLICATION_CREDENTIALS, "
        "gcloud auth application-default login, or the metadata server / workload identity",
    },
    "abfs": {
        "bucket": "container",
        "permission": "grant the identity 'Storage Blob Data Contributor' on the container, "
        "or fix the account key / SAS in AZURE_STORAGE_CONNECTION_STRING",
        "expired": "refresh them (az login, a new SAS token, or the managed identity) and retry",
        "credentials": "set AZURE_STORAGE_ACCOUNT_NAME and provide credentials through "
        "DefaultAzureCredential (environment, managed / workload identity, az login) or "
        "AZURE_STORAGE_CONNECTION_STRING",
    },
}


def _hidden(name: str) -> bool:
    return name.startswith((".", "_")) or name.endswith(".tmp")


@dataclass
class _Entry:
    key: str
    size: int
    mtime: float


@dataclass
class PartitionState:
    """One folder's files as the commit log sees them."""

    live: list[_Entry]
    orphans: list[_Entry]
    markers: dict[str, dict[str, list[str]]]
    other: list[_Entry]


def _mtime(info: dict[str, Any]) -> float:
    for k in ("LastModified", "last_modified", "updated", "mtime", "creation_time"):
        v = info.get(k)
        if v is None:
            continue
        if isinstance(v, dt.datetime):
            return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()
        if isinstance(v, int | float):
            return float(v)
        try:
            return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
    return time.time()


class ObjectStorage(Storage):
    """A lake under ``<scheme>://<bucket>/<prefix>`` with per-partition commit logs."""

    def __init__(
        self,
        url: str,
        endpoint_url: str | None = None,
        scratch: str | Path | None = None,
        fs: Any = None,
        **options: Any,
    ) -> None:
        scheme, _, rest = url.partition("://")
        scheme = scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigError(f"lake url scheme {scheme!r} is not supported")
        protocol, package, extra = SCHEMES[scheme]
        # Engines (DuckDB's registered fsspec filesystem) know each store by the first
        # protocol of its fsspec class: s3://, gs://, abfs:// (also for az:// and abfss://).
        self.scheme = _ENGINE_SCHEMES.get(scheme, scheme)
        self.url = f"{scheme}://{rest.strip('/')}"
        self.root = rest.strip("/")
        if not self.root:
            raise ConfigError(f"lake url {url!r} names no bucket or container")
        self.bucket = self.root.split("/", 1)[0]
        self.endpoint_url = endpoint_url
        if fs is None:
            fs = _make_fs(protocol, package, extra, endpoint_url, options)
        self.fs = fs
        self._scratch = (
            Path(scratch) if scratch else Path(tempfile.gettempdir()) / "mantissa-staging"
        )
        self._markers: dict[str, dict[str, list[str]]] = {}
        self._lock = threading.Lock()
        self._bucket_ok = False
        self._reader_fs: Any = None  # the twin of fs registered with DuckDB (see attach)

    # -- naming -----------------------------------------------------------------
    def _path(self, key: str) -> str:
        key = key.strip("/")
        if ".." in key.split("/"):
            raise ValueError(f"key {key!r} escapes the lake root")
        return f"{self.root}/{key}" if key else self.root

    def _key(self, path: str) -> str:
        path = path.strip("/")
        return path[len(self.root) :].strip("/")

    def uri(self, key: str = "") -> str:
        return f"{self.scheme}://{self._path(key)}"

    def describe(self) -> str:
        ep = f" via {self.endpoint_url}" if self.endpoint_url else ""
        return f"{self.url}{ep}"

    # -- errors -----------------------------------------------------------------
    def display(self, key: str = "") -> str:
        """``key`` as the user wrote the lake URL (``az://`` stays ``az://``), for messages."""
        scheme = self.url.split("://", 1)[0]
        return f"{scheme}://{self._path(key)}" if key else self.url

    def _error(self, exc: BaseException, what: str, key: str = "") -> StorageError:
        """Map an SDK error to one naming the object and the fix (never credentials)."""
        text = f"{type(exc).__name__}: {exc}"
        low = text.lower()
        target = self.display(key)
        hints = _HINTS[self.scheme]
        if (
            "nosuchbucket" in low
            or "bucket does not exist" in low
            or "containernotfound" in low
            or "no such container" in low
        ):
            return StorageError(
                f"{what} {target}: {hints['bucket']} {self.bucket!r} does not exist",
                hint="create it or fix lake.url in mantissa.yaml",
            )
        if isinstance(exc, FileNotFoundError):
            if what in ("writing", "committing", "committing under") and not self._bucket_exists():
                return StorageError(
                    f"{what} {target}: {hints['bucket']} {self.bucket!r} does not exist",
                    hint="create it or fix lake.url in mantissa.yaml",
                )
            return StorageError(f"{what} {target}: no such object", hint="was it compacted away?")
        if any(
            s in low
            for s in (
                "expiredtoken",
                "token has expired",
                "expired",
                "invalidclienttokenid",
                "invalid_grant",
                "refresherror",
            )
        ):
            return StorageError(
                f"{what} {target}: the credentials have expired", hint=hints["expired"]
            )
        if (
            any(
                s in low
                for s in (
                    "accessdenied",
                    "access denied",
                    "forbidden",
                    "permissionerror",
                    "authorizationfailure",
                    "authorizationpermissionmismatch",
                    "authenticationfailed",
                    "does not have storage.",
                )
            )
            or isinstance(exc, PermissionError)
            or re.search(r"\b40[13]\b", low)
        ):
            if self._anonymous_fallback():
                return StorageError(
                    f"{what} {target}: permission denied to an anonymous caller "
                    "(no credentials were found)",
                    hint=hints["credentials"],
                )
            return StorageError(f"{what} {target}: permission denied", hint=hints["permission"])
        if "authorizationheadermalformed" in low or "permanentredirect" in low or "region" in low:
            return StorageError(
                f"{what} {target}: the bucket is in another region than the client",
                hint="set AWS_REGION / AWS_DEFAULT_REGION to the bucket's region",
            )
        if (
            "nocredentials" in low
            or "unable to locate credentials" in low
            or "defaultcredentialserror" in low
            or "credentialunavailable" in low
            or "default credentials were not found" in low
        ):
            return StorageError(f"{what} {target}: no credentials found", hint=hints["credentials"])
        return StorageError(f"{what} {target}: {text.splitlines()[0][:300]}")

    def _anonymous_fallback(self) -> bool:
        """gcsfs fell back to anonymous access because no credential in the chain worked."""
        creds = getattr(self.fs, "credentials", None)
        return (
            self.scheme == "gs"
            and getattr(creds, "method", None) == "anon"
            and not os.environ.get("STORAGE_EMULATOR_HOST")
        )

    # -- listing and the commit log ----------------------------------------------
    def _find(self, prefix: str) -> dict[str, dict[str, Any]]:
        path = self._path(prefix)
        try:
            found = self.fs.find(path, detail=True, withdirs=False)
        except FileNotFoundError:
            found = {}
        except Exception as exc:
            raise self._error(exc, "listing", prefix) from None
        if not found and not self._bucket_ok:
            # An empty listing looks the same for an empty prefix and a missing bucket
            # (adlfs and gcsfs swallow the 404): check the bucket once per process.
            if not self._bucket_exists():
                raise self._error(
                    Exception(f"NoSuchBucket: {self.bucket}"), "listing", prefix
                ) from None
            self._bucket_ok = True
        elif found:
            self._bucket_ok = True
        return {p.strip("/"): info for p, info in found.items() if info.get("type") != "directory"}

    def _bucket_exists(self) -> bool:
        try:
            return bool(self.fs.exists(self.bucket))
        except Exception:
            return False

    def _read_markers(self, paths: list[str]) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        missing = []
        with self._lock:
            for p in paths:
                if p in self._markers:
                    out[p] = self._markers[p]
                else:
                    missing.append(p)
        if missing:
            try:
                blobs = self.fs.cat(missing, on_error="omit")
            except Exception as exc:
                raise self._error(exc, "reading commit markers under") from None
            for p, body in blobs.items():
                try:
                    doc = json.loads(body)
                    marker = {
                        "add": [str(x) for x in doc.get("add", [])],
                        "remove": [str(x) for x in doc.get("remove", [])],
                    }
                except (ValueError, AttributeError):
                    # A marker that is not ours commits nothing; never guess.
                    marker = {"add": [], "remove": []}
                out[p.strip("/")] = marker
                with self._lock:
                    self._markers[p.strip("/")] = marker
        return out

    def partitions(self, prefix: str) -> dict[str, PartitionState]:
        """Every folder under ``prefix`` with its live files, orphans and markers."""
        return self._states(self._find(prefix))

    def _states(self, found: dict[str, dict[str, Any]]) -> dict[str, PartitionState]:
        by_dir: dict[str, dict[str, _Entry]] = {}
        marker_paths: dict[str, list[str]] = {}
        other: dict[str, list[_Entry]] = {}
        for path, info in found.items():
            key = self._key(path)
            parent, _, name = key.rpartition("/")
            rel_parts = key.split("/")
            if parent.endswith("/" + COMMITS_DIR) or parent == COMMITS_DIR:
                folder = parent[: -len(COMMITS_DIR)].rstrip("/")
                marker_paths.setdefault(folder, []).append(path)
                continue
            if any(_hidden(p) for p in rel_parts):
                continue
            entry = _Entry(key, int(info.get("size") or 0), _mtime(info))
            if name.endswith(".parquet"):
                by_dir.setdefault(parent, {})[name] = entry
            else:
                other.setdefault(parent, []).append(entry)
        all_markers = self._read_markers([p for ps in marker_paths.values() for p in ps])
        out: dict[str, PartitionState] = {}
        for folder in sorted(set(by_dir) | set(marker_paths) | set(other)):
            files = by_dir.get(folder, {})
            markers = {
                p.rsplit("/", 1)[1]: all_markers[p.strip("/")]
                for p in marker_paths.get(folder, [])
                if p.strip("/") in all_markers
            }
            added: set[str] = set()
            removed: set[str] = set()
            for m in markers.values():
                added.update(m["add"])
                removed.update(m["remove"])
            live_names = (added - removed) & set(files)
            out[folder] = PartitionState(
                live=[files[n] for n in sorted(live_names)],
                orphans=[files[n] for n in sorted(set(files) - added)],
                markers=markers,
                other=other.get(folder, []),
            )
        return out

    def list(self, prefix: str, suffix: str = "") -> Iterator[ObjectInfo]:
        for _folder, st in sorted(self.partitions(prefix).items()):
            for e in sorted([*st.live, *st.other], key=lambda x: x.key):
                if e.key.endswith(suffix):
                    yield ObjectInfo(e.key, e.size)

    # -- writing ----------------------------------------------------------------
    def _write_marker(self, folder: str, commit_id: str, add: list[str], remove: list[str]) -> None:
        body = json.dumps({"add": sorted(add), "remove": sorted(remove), "at": time.time()})
        key = (
            f"{folder}/{COMMITS_DIR}/{commit_id}.json"
            if folder
            else f"{COMMITS_DIR}/{commit_id}.json"
        )
        try:
            self.fs.pipe_file(self._path(key), body.encode())
        except Exception as exc:
            raise self._error(exc, "committing", key) from None
        with self._lock:
            self._markers[self._path(key)] = {"add": sorted(add), "remove": sorted(remove)}

    def _write_markers(
        self, folders: dict[str, tuple[list[str], list[str]]], commit_id: str
    ) -> None:
        """All of a commit's markers, concurrently (one PUT each; after every data file)."""
        if len(folders) <= 1:
            for folder, (add, rem) in folders.items():
                self._write_marker(folder, commit_id, add, rem)
            return
        blobs: dict[str, bytes] = {}
        docs: dict[str, dict[str, list[str]]] = {}
        for folder, (add, rem) in folders.items():
            key = f"{folder}/{COMMITS_DIR}/{commit_id}.json"
            doc = {"add": sorted(add), "remove": sorted(rem)}
            blobs[self._path(key)] = json.dumps({**doc, "at": time.time()}).encode()
            docs[self._path(key)] = doc
        try:
            self.fs.pipe(blobs)
        except Exception as exc:
            raise self._error(exc, "committing under") from None
        with self._lock:
            self._markers.update(docs)

    def list_many(self, prefixes: list[str], suffix: str = "") -> list[ObjectInfo]:
        """Several partitions' live objects, listed concurrently."""
        if len(prefixes) <= 1 or not getattr(self.fs, "async_impl", False):
            return [o for p in prefixes for o in self.list(p, suffix)]
        from fsspec.asyn import sync

        async def gather() -> list[Any]:
            import asyncio

            return await asyncio.gather(
                *[self.fs._find(self._path(p), detail=True, withdirs=False) for p in prefixes],
                return_exceptions=True,
            )

        try:
            results = sync(self.fs.loop, gather)
        except Exception as exc:
            raise self._error(exc, "listing") from None
        found: dict[str, dict[str, Any]] = {}
        for r in results:
            if isinstance(r, FileNotFoundError):
                continue
            if isinstance(r, BaseException):
                raise self._error(r, "listing") from None
            found.update({p.strip("/"): i for p, i in r.items() if i.get("type") != "directory"})
        out: list[ObjectInfo] = []
        for _folder, st in sorted(self._states(found).items()):
            out += [
                ObjectInfo(e.key, e.size) for e in [*st.live, *st.other] if e.key.endswith(suffix)
            ]
        return out

    def publish(self, files: dict[str, Path], remove: Iterable[str] = ()) -> None:
        """Upload ``files`` (key → local path), then commit them per folder in one marker each.

        Keys in ``remove`` (live data files) are retired by the same markers, so a
        reader sees either the old files or the new ones, never both.
        """
        commit_id = f"{time.time_ns():x}-{uuid.uuid4().hex[:12]}"
        by_folder: dict[str, tuple[list[str], list[str]]] = {}
        plain: list[tuple[Path, str]] = []
        for key, local in files.items():
            folder, _, name = key.rpartition("/")
            if name.endswith(".parquet"):
                by_folder.setdefault(folder, ([], []))[0].append(name)
            else:
                plain.append((Path(local), key))
        for key in remove:
            folder, _, name = key.rpartition("/")
            by_folder.setdefault(folder, ([], []))[1].append(name)
        # Data first, concurrently; nothing is visible until its marker exists.
        if files:
            keys = list(files)
            try:
                self.fs.put([str(files[k]) for k in keys], [self._path(k) for k in keys])
            except Exception as exc:
                raise self._error(exc, "writing", keys[0]) from None
        self._write_markers(
            {folder: (add, rem) for folder, (add, rem) in sorted(by_folder.items())}, commit_id
        )
        for local, _key in plain:
            local.unlink(missing_ok=True)
        for local in files.values():
            Path(local).unlink(missing_ok=True)

    def put_file(self, local_path: str | Path, key: str) -> None:
        self.publish({key: Path(local_path)})

    def write_bytes(self, key: str, data: bytes) -> None:
        if key.endswith(".parquet"):
            fd, tmp = tempfile.mkstemp(dir=self.scratch_dir(), suffix=".parquet")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.publish({key: Path(tmp)})
            return
        try:
            self.fs.pipe_file(self._path(key), data)
        except Exception as exc:
            raise self._error(exc, "writing", key) from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(key)))
        except FileNotFoundError:
            raise StorageError(f"no object at {self.display(key)}") from None
        except Exception as exc:
            raise self._error(exc, "reading", key) from None

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(key)))
        except Exception as exc:
            raise self._error(exc, "checking", key) from None

    def delete(self, key: str) -> None:
        self.delete_many([key])

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete objects in as few requests as the store allows (S3: 1000 per request)."""
        paths = [self._path(k) for k in keys]
        if not paths:
            return
        try:
            self.fs.rm(paths)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error(exc, "deleting under") from None
        with self._lock:
            for p in paths:
                self._markers.pop(p, None)

    def scratch_dir(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    # -- engines ------------------------------------------------------------------
    def attach(self, con: Any) -> None:
        """Let a DuckDB connection read this store's URLs through the same filesystem."""
        # DuckDB names a registered fsspec filesystem by its first protocol ("s3" for
        # s3fs's ("s3", "s3a")); a connection shared by several writers registers it once
        protocols = self.fs.protocol
        names = {protocols} if isinstance(protocols, str) else set(protocols)
        if not names & _registered(con):
            with self._lock:
                if self._reader_fs is None:
                    self._reader_fs = _remembering(self.fs)
            con.register_filesystem(self._reader_fs)

    def check(self) -> list[dict[str, str]]:
        """Write, list, read and delete a probe object: each step's result."""
        steps: list[dict[str, str]] = []
        probe = f"_mantissa_probe/{uuid.uuid4().hex}.txt"
        for name, fn in (
            ("list", lambda: self.fs.ls(self._path(""), detail=False)),
            ("write", lambda: self.fs.pipe_file(self._path(probe), b"ok")),
            ("read", lambda: self.fs.cat_file(self._path(probe))),
            ("delete", lambda: self.fs.rm(self._path(probe))),
        ):
            try:
                fn()
                steps.append({"step": name, "status": "ok", "detail": self.display()})
            except FileNotFoundError as exc:
                if name == "list":
                    steps.append({"step": name, "status": "ok", "detail": "empty lake"})
                    continue
                steps.append(
                    {"step": name, "status": "error", "detail": str(self._error(exc, name))}
                )
            except Exception as exc:
                steps.append(
                    {"step": name, "status": "error", "detail": str(self._error(exc, name))}
                )
        return steps


def _remembering(fs: Any) -> Any:
    """A twin of ``fs`` for DuckDB that asks for a lake file's details once.

    DuckDB checks a Parquet file's size and last-modified time before every read (to
    reuse its cached footer): one HEAD request per file per query, which dominates small
    queries over hundreds of objects. A committed ``.parquet`` object is never rewritten
    (every batch and every compaction output has a new unique name), so its details are
    remembered for the life of the process; everything else is asked every time.
    """
    import fsspec.asyn

    base = type(fs)
    memo: dict[str, dict[str, Any]] = {}
    guard = threading.Lock()

    def info(self: Any, path: Any, **kwargs: Any) -> dict[str, Any]:
        def ask() -> dict[str, Any]:
            if getattr(self, "async_impl", False):
                return dict(fsspec.asyn.sync(self.loop, self._info, path, **kwargs))
            return dict(base.info(self, path, **kwargs))

        text = str(path)
        if not text.endswith(".parquet") or kwargs.get("refresh"):
            return ask()
        key = self._strip_protocol(text)
        with guard:
            hit = memo.get(key)
        if hit is None:
            hit = ask()
            with guard:
                if len(memo) >= 500_000:
                    memo.clear()
                memo[key] = hit
        return dict(hit)

    twin = type(f"Remembering{base.__name__}", (base,), {"info": info})
    return twin(*fs.storage_args, **{**fs.storage_options, "skip_instance_cache": True})


def _registered(con: Any) -> set[str]:
    """Names of the filesystems registered on a DuckDB connection."""
    try:
        return set(con.list_filesystems())
    except Exception:
        return set()


def _make_fs(
    protocol: str, package: str, extra: str, endpoint_url: str | None, options: dict[str, Any]
) -> Any:
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"the lake on {protocol} needs {package}",
            hint=f"pip install 'mantissa-log[{extra}]'",
        ) from None
    opts = dict(options)
    if protocol == "s3":
        # botocore honours AWS_ENDPOINT_URL(_S3) too; pass it explicitly so that s3fs's
        # own code paths (and error messages) agree with what boto3 uses.
        ep = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        if ep:
            opts["endpoint_url"] = ep
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            opts.setdefault("client_kwargs", {}).setdefault("region_name", region)
        # Object listings must be fresh: another process may have committed since.
        opts.setdefault("use_listings_cache", False)
    elif protocol == "gcs":
        # Credentials: gcsfs's default chain (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC,
        # the metadata server / workload identity). An emulator (STORAGE_EMULATOR_HOST,
        # as google-cloud-storage reads it) takes anonymous requests, like the SDK does.
        emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
        ep = endpoint_url or (emulator if emulator not in ("", "default") else None)
        if ep:
            opts["endpoint_url"] = ep if "://" in ep else f"http://{ep}"
        if emulator not in ("", "default") and not endpoint_url:
            opts.setdefault("token", "anon")
        opts.setdefault("use_listings_cache", False)
        return _gcs_filesystem(opts, package, extra)
    elif protocol == "abfs":
        # adlfs reads AZURE_STORAGE_ACCOUNT_NAME / AZURE_STORAGE_CONNECTION_STRING and
        # falls back to DefaultAzureCredential (managed identity, az login, workload id).
        account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        if account:
            opts.setdefault("account_name", account)
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if conn:
            opts.setdefault("connection_string", conn)
        elif "account_name" in opts:
            opts.setdefault("anon", False)
        if endpoint_url:
            opts.setdefault("account_host", endpoint_url.split("://", 1)[-1].strip("/"))
        opts.setdefault("use_listings_cache", False)
    try:
        return fsspec.filesystem(protocol, skip_instance_cache=True, **opts)
    except ImportError:
        raise ConfigError(
            f"the lake on {protocol} needs {package}",
            hint=f"pip install 'mantissa-log[{extra}]'",
        ) from None


_GCS_CLASSES: dict[Any, type] = {}


def _gcs_filesystem(opts: dict[str, Any], package: str, extra: str) -> Any:
    """A gcsfs filesystem whose files read ahead plainly (no background prefetch tasks)."""
    try:
        import gcsfs
        from gcsfs.core import GCSFileSystem as PlainGCS
    except ImportError:
        raise ConfigError(
            f"the lake on gcs needs {package}", hint=f"pip install 'mantissa-log[{extra}]'"
        ) from None
    # gcsfs's extended filesystem first asks Google's gRPC control plane for the bucket
    # layout (hierarchical/zonal); an emulator has no such API, so it gets the JSON-API one.
    base: Any = PlainGCS if opts.get("token") == "anon" else gcsfs.GCSFileSystem
    if base not in _GCS_CLASSES:

        def _open(self: Any, path: str, mode: str = "rb", **kwargs: Any) -> Any:
            # gcsfs's default "adaptive" cache starts asyncio prefetch tasks that DuckDB's
            # synchronous reads leave pending at exit; read-ahead does the same job here.
            kwargs.setdefault("cache_type", "readahead")
            return base._open(self, path, mode, **kwargs)

        _GCS_CLASSES[base] = type("LakeGCSFileSystem", (base,), {"_open": _open})
    return _GCS_CLASSES[base](skip_instance_cache=True, **opts)
