"""Sources: URL downloads through a local HTTP server, the Hub cache offline, local files and directories."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch

from jepa.hub import (
    SourceNotAvailableError,
    download,
    load_pretrained,
    official_url,
    resolve_source,
    save_official,
    save_pretrained,
)
from jepa.hub.sources import OFFICIAL_FILES, parse_hub_id, url_cache_path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_offline(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "JEPA_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; ``.requests`` lists the GET paths."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server naming)
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep the test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.root, httpd.requests = root, requests
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_url_download_is_cached_and_not_repeated(server, tmp_path, tiny_models, no_offline, monkeypatch):
    encoder, predictor = tiny_models(0)
    (server.root / "vjepa2").mkdir()
    save_official(server.root / "vjepa2" / "tiny.pt", encoder, predictor)
    url = f"{server.url}/vjepa2/tiny.pt"
    cache = tmp_path / "cache"

    loaded = load_pretrained(url, cache_dir=cache)
    assert torch.equal(loaded.encoder.norm.weight, encoder.norm.weight)
    cached = url_cache_path(url, cache)
    assert cached.is_file() and cached.read_bytes() == (server.root / "vjepa2" / "tiny.pt").read_bytes()
    assert server.requests == ["/vjepa2/tiny.pt"]
    assert not list(cached.parent.glob("*.part"))  # the temporary file was renamed

    assert download(url, cache_dir=cache) == cached  # cache hit: no second request
    load_pretrained(url, cache_dir=cache)
    assert server.requests == ["/vjepa2/tiny.pt"]

    monkeypatch.setenv("JEPA_CACHE", str(cache))  # default cache dir comes from $JEPA_CACHE
    assert resolve_source(url).path == cached
    assert server.requests == ["/vjepa2/tiny.pt"]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: the cached file still works
    assert download(url, cache_dir=cache) == cached


def test_url_errors(server, tmp_path, no_offline, monkeypatch):
    cache = tmp_path / "cache"
    missing = f"{server.url}/vjepa2/absent.pt"
    with pytest.raises(SourceNotAvailableError, match=r"could not download .*absent\.pt.*404"):
        download(missing, cache_dir=cache)
    assert not url_cache_path(missing, cache).exists()
    assert not list(cache.rglob("*.part"))

    monkeypatch.setenv("JEPA_OFFLINE", "1")
    (server.root / "later.pt").write_bytes(b"x")
    with pytest.raises(SourceNotAvailableError, match=r"later\.pt is not in the cache .*offline mode.*HF_HUB_OFFLINE"):
        download(f"{server.url}/later.pt", cache_dir=cache)
    assert server.requests == ["/vjepa2/absent.pt"]  # offline mode made no request


def test_official_names_map_to_the_released_urls():
    assert official_url("vitl") == "https://dl.fbaipublicfiles.com/vjepa2/vitl.pt"
    assert official_url("vitg-384.pt") == "https://dl.fbaipublicfiles.com/vjepa2/vitg-384.pt"
    assert official_url("ssv2-vitl-16x2x3") == "https://dl.fbaipublicfiles.com/vjepa2/evals/ssv2-vitl-16x2x3.pt"
    assert len(OFFICIAL_FILES) == 11
    with pytest.raises(KeyError, match="unknown official V-JEPA 2 file 'vitx'"):
        official_url("vitx")


def test_official_name_uses_the_cache_offline(tmp_path, tiny_models, monkeypatch):
    encoder, predictor = tiny_models(0)
    cache = tmp_path / "cache"
    cached = url_cache_path(official_url("vitl"), cache)
    cached.parent.mkdir(parents=True)
    save_official(cached, encoder, predictor)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert download("vitl", cache_dir=cache) == cached
    loaded = load_pretrained("vitl", cache_dir=cache)
    assert loaded.layout == "official" and torch.equal(loaded.encoder.norm.bias, encoder.norm.bias)
    with pytest.raises(SourceNotAvailableError, match=r"vith\.pt is not in the cache"):
        load_pretrained("vith", cache_dir=cache)


def _populate_hub_cache(cache: Path, repo_id: str, files: Path, revision: str = COMMIT) -> None:
    """Lay out every file of ``files`` as huggingface_hub caches a download: blobs, snapshot symlinks, refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name in sorted(p.name for p in files.iterdir()):
        blob = repo / "blobs" / f"blob-{name}"
        shutil.copyfile(files / name, blob)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)


def test_hub_repo_loads_offline_from_the_cache(tmp_path, tiny_models, monkeypatch):
    encoder, predictor = tiny_models(0)
    hf_files = tmp_path / "hf_files"
    from jepa.hub import save_hf

    save_hf(hf_files, encoder, predictor)
    cache = tmp_path / "hf_cache"
    _populate_hub_cache(cache, "jepa-test/vjepa2-tiny-test", hf_files)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    loaded = load_pretrained("jepa-test/vjepa2-tiny-test", cache_dir=cache)
    assert loaded.layout == "hf"
    assert loaded.path.parent.name == COMMIT
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.encoder.state_dict()[key], value), key
    assert torch.equal(loaded.predictor.mask_tokens[3], predictor.mask_tokens[3])
    # an explicit revision, by argument or in the id
    assert resolve_source("jepa-test/vjepa2-tiny-test", revision=COMMIT, cache_dir=cache).kind == "hub"
    assert resolve_source(f"jepa-test/vjepa2-tiny-test@{COMMIT}", cache_dir=cache).path == loaded.path
    assert download("jepa-test/vjepa2-tiny-test", cache_dir=cache) == loaded.path.parent


def test_hub_repo_not_cached_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceNotAvailableError) as info:
        load_pretrained("facebook/vjepa2-vitl-fpc64-256", cache_dir=tmp_path / "empty")
    message = str(info.value)
    assert "facebook/vjepa2-vitl-fpc64-256" in message and "HF_HUB_OFFLINE" in message


def test_local_paths_and_ids(tmp_path, tiny_models):
    encoder, predictor = tiny_models(0)
    directory = save_pretrained(tmp_path / "model", encoder, predictor)
    resolved = resolve_source(directory)
    assert resolved.kind == "directory" and resolved.path.name == "model.safetensors"
    assert resolved.config_path == directory / "config.json"
    single = resolve_source(directory / "model.safetensors")  # the file itself finds its config.json
    assert single.kind == "file" and single.config_path == directory / "config.json"
    assert load_pretrained(directory / "model.safetensors").layout == "jepa"
    alone = tmp_path / "alone.safetensors"  # without its config.json: architecture inferred from shapes
    shutil.copyfile(directory / "model.safetensors", alone)
    loaded = load_pretrained(alone)
    assert loaded.layout == "jepa" and loaded.encoder_config.num_heads == 3 and loaded.predictor_config.depth == 1
    assert torch.equal(loaded.encoder.norm.weight, encoder.norm.weight)
    assert parse_hub_id("facebook/vjepa2-vitl-fpc64-256@main") == ("facebook/vjepa2-vitl-fpc64-256", "main")
    assert parse_hub_id("hf://org/name") == ("org/name", None)
    assert parse_hub_id("not a repo") is None
    with pytest.raises(SourceNotAvailableError, match=r"checkpoint file 'ckpts/does-not-exist\.pt' does not exist"):
        resolve_source("ckpts/does-not-exist.pt")  # not mistaken for a Hub repo id
    with pytest.raises(SourceNotAvailableError, match=r"'no such thing' is not an existing file or directory"):
        resolve_source("no such thing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceNotAvailableError, match=r"empty has no model\.safetensors"):
        resolve_source(empty)


def _shard(directory: Path, out: Path) -> Path:
    """Rewrite ``directory/model.safetensors`` as two shards + ``model.safetensors.index.json`` in ``out``."""
    from safetensors.torch import load_file, save_file

    out.mkdir()
    tensors = load_file(directory / "model.safetensors")
    keys = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, names in halves.items():
        save_file({k: tensors[k] for k in names}, out / name, metadata={"format": "pt"})
    weight_map = {k: name for name, names in halves.items() for k in names}
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    shutil.copyfile(directory / "config.json", out / "config.json")
    return out


def test_sharded_safetensors_directory_and_hub_repo(tmp_path, tiny_models, monkeypatch):
    from jepa.hub import save_hf

    encoder, predictor = tiny_models(0)
    sharded = _shard(save_hf(tmp_path / "hf", encoder, predictor), tmp_path / "sharded")
    reference = load_pretrained(tmp_path / "hf")
    from_dir = load_pretrained(sharded)
    assert from_dir.path.name == "model.safetensors.index.json" and from_dir.layout == "hf"
    cache = tmp_path / "hf_cache"
    _populate_hub_cache(cache, "jepa-test/vjepa2-sharded", sharded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from_hub = load_pretrained("jepa-test/vjepa2-sharded", cache_dir=cache)
    for loaded in (from_dir, from_hub):
        for key, value in reference.encoder.state_dict().items():
            assert torch.equal(loaded.encoder.state_dict()[key], value), key
        for key, value in reference.predictor.state_dict().items():
            assert torch.equal(loaded.predictor.state_dict()[key], value), key


def test_hub_download_falls_back_to_shards_and_names_missing_weights(tmp_path, tiny_models, monkeypatch, no_offline):
    """The online branch (no network here): ``hf_hub_download`` is replaced by a fake repo on disk."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    from jepa.hub import save_hf
    from jepa.hub.sources import download_hub

    encoder, predictor = tiny_models(0)
    repo = _shard(save_hf(tmp_path / "hf", encoder, predictor), tmp_path / "repo")
    fetched: list[str] = []

    def fake_download(repo_id, filename, *, revision=None, cache_dir=None, local_files_only=False):
        assert not local_files_only
        fetched.append(filename)
        if not (repo / filename).is_file():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(repo / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    weights, config = download_hub("jepa-test/sharded")
    assert weights == repo / "model.safetensors.index.json" and config == repo / "config.json"
    assert fetched == [
        "model.safetensors",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "config.json",
    ]
    for name in ("model.safetensors.index.json", "model-00001-of-00002.safetensors"):
        (repo / name).unlink()
    with pytest.raises(SourceNotAvailableError, match="'jepa-test/sharded' has neither model.safetensors nor"):
        download_hub("jepa-test/sharded")
