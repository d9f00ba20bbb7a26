"""Examples get their data (issue 27): gensim_bits.download against a local HTTP server
(http.server, as `python -m http.server` serves), checksum mismatch included, and
examples/train_word2bits.py's download path end to end."""
import functools
import hashlib
import http.server
import importlib.util
import pathlib
import threading
import zipfile

import pytest

from gensim_bits.download import DownloadError, fetch, unpack_member

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture()
def server(tmp_path):
    """(folder served, base URL, list of requested paths)."""
    served = tmp_path / "served"
    served.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_fetch_downloads_once_and_checks_the_pin(server, tmp_path):
    served, url, requests = server
    (served / "data.txt").write_bytes(b"the king and the queen\n" * 100)
    cache = tmp_path / "cache"
    pin = sha256((served / "data.txt").read_bytes())
    path = fetch(f"{url}/data.txt", pin, folder=str(cache), progress=False)
    assert pathlib.Path(path).read_bytes() == (served / "data.txt").read_bytes()
    assert fetch(f"{url}/data.txt", pin, folder=str(cache), progress=False) == path
    assert len(requests) == 1  # the second call used the cache
    pathlib.Path(path).write_bytes(b"damaged")
    assert pathlib.Path(fetch(f"{url}/data.txt", pin, folder=str(cache), progress=False)).read_bytes() \
        == (served / "data.txt").read_bytes()  # a damaged copy is fetched again
    assert len(requests) == 2


def test_a_checksum_mismatch_keeps_nothing(server, tmp_path):
    served, url, _ = server
    (served / "data.txt").write_bytes(b"not what was pinned\n")
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="SHA-256 is .* not the pinned 0{64}; nothing was kept") as error:
        fetch(f"{url}/data.txt", "0" * 64, folder=str(cache), progress=False)
    assert "\n" not in str(error.value)
    assert list(cache.iterdir()) == []


def test_missing_file_and_no_server_are_one_line(server, tmp_path):
    _, url, _ = server
    with pytest.raises(DownloadError, match=r"cannot download .*/missing.txt: HTTP 404"):
        fetch(f"{url}/missing.txt", "0" * 64, folder=str(tmp_path), progress=False)
    with pytest.raises(DownloadError, match="cannot download http://127.0.0.1:9/x.zip"):
        fetch("http://127.0.0.1:9/x.zip", "0" * 64, folder=str(tmp_path), progress=False)


def test_unpack_member(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("text8", " anarchism originated as a term")
    path = unpack_member(archive, "text8", sha256(b" anarchism originated as a term"))
    assert pathlib.Path(path).read_text() == " anarchism originated as a term"
    with pytest.raises(DownloadError, match="cannot unpack other"):
        unpack_member(archive, "other")
    with pytest.raises(DownloadError, match="pinned SHA-256"):
        unpack_member(archive, "text8", "0" * 64)


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_word2bits_downloads_its_corpus(server, tmp_path, monkeypatch, capsys):
    served, url, _ = server
    words = ("the king rules the land and the queen rules the sea " * 400).encode()
    with zipfile.ZipFile(served / "text8.zip", "w") as zipped:
        zipped.writestr("text8", words)
    example = load_example("train_word2bits")
    monkeypatch.setenv("NLP_COMPRESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(example, "TEXT8_URL", f"{url}/text8.zip")
    monkeypatch.setattr(example, "TEXT8_ZIP_SHA256", sha256((served / "text8.zip").read_bytes()))
    assert example.main(["--vector-size", "8", "--epochs", "1", "--workers", "1", "--output", "w"]) == 0
    assert "7 words" in capsys.readouterr().out and (tmp_path / "w.vectors.txt").exists()
    # a file that is not the pinned one: exit status 1, one line that says so, nothing trained
    monkeypatch.setenv("NLP_COMPRESS_CACHE", str(tmp_path / "cache2"))
    monkeypatch.setattr(example, "TEXT8_ZIP_SHA256", "0" * 64)
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--output", "w2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "not the pinned" in err.splitlines()[-1]
    assert not (tmp_path / "w2.vectors.txt").exists()
