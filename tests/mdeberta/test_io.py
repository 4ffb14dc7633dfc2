import json
import lzma

import pytest

from mdeberta import io

BASES = ["local", "memory"]


@pytest.fixture(params=BASES)
def base(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path)
        return
    url = f"memory://io-test-{tmp_path.name}"
    yield url
    fs, path = io.url_to_fs(url)
    fs.rm(path, recursive=True)


@pytest.mark.parametrize("ext", ["", ".xz", ".zst", ".gz"])
def test_text_round_trip_with_compression(base, ext):
    url = io.join(base, "sub", f"data.txt{ext}")
    text = "première ligne\n第二行\n"
    with io.atomic_write(url, "wt") as f:
        f.write(text)
    assert io.read_text(url) == text
    if ext:  # stored compressed: the raw bytes are not the text
        with io.open_file(url, "rb", compression=None) as f:
            assert f.read() != text.encode()


def test_xz_is_real_xz(tmp_path):
    url = str(tmp_path / "a.txt.xz")
    io.write_text(url, "hello\n")
    assert lzma.decompress((tmp_path / "a.txt.xz").read_bytes()) == b"hello\n"


def test_atomic_write_leaves_nothing_on_failure(base):
    url = io.join(base, "out.json")
    io.write_json(url, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_write(url, "wt") as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert io.read_json(url) == {"a": 1}
    assert io.listdir(base) == ["out.json"]


def test_json_is_deterministic(base):
    a, b = io.join(base, "a.json"), io.join(base, "b.json")
    io.write_json(a, {"z": 1, "a": [1, 2]})
    io.write_json(b, {"a": [1, 2], "z": 1})
    assert io.sha256_file(a) == io.sha256_file(b)
    assert json.loads(io.read_text(a)) == {"a": [1, 2], "z": 1}


def test_bad_json_names_file(base):
    url = io.join(base, "bad.json")
    io.write_text(url, "{nope")
    with pytest.raises(ValueError, match="bad.json"):
        io.read_json(url)


def test_expand_inputs(base):
    for name in ["b.txt.xz", "a.txt.xz", "c.jsonl"]:
        io.write_text(io.join(base, "in", name), "x\n")
    files = io.expand_inputs([io.join(base, "in", "*.txt.xz")])
    assert [f.rsplit("/", 1)[1] for f in files] == ["a.txt.xz", "b.txt.xz"]
    assert len(io.expand_inputs([io.join(base, "in")])) == 3
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        io.expand_inputs([io.join(base, "in", "missing.txt")])
    with pytest.raises(FileNotFoundError, match=r"\*\.gz"):
        io.expand_inputs([io.join(base, "in", "*.gz")])


def test_sha256_and_size(base):
    url = io.join(base, "x.bin")
    with io.atomic_write(url) as f:
        f.write(b"abc")
    assert io.file_size(url) == 3
    assert io.sha256_file(url).startswith("ba7816bf")
    assert io.exists(url) and not io.exists(io.join(base, "y.bin"))


@pytest.mark.parametrize("ext", [".xz", ".zst", ".gz", ""])
def test_binary_reads_support_readline(tmp_path, ext):
    url = str(tmp_path / f"lines.txt{ext}")
    io.write_text(url, "a\nb\n")
    with io.open_file(url, "rb") as f:
        assert f.readline() == b"a\n" and f.readline() == b"b\n" and f.readline() == b""


def test_truncated_zstd_fails_naming_the_file(tmp_path):
    url = str(tmp_path / "part.jsonl.zst")
    io.write_text(url, "".join(f'{{"id": {i}, "text": "x{i * 7}"}}\n' for i in range(5000)))
    data = (tmp_path / "part.jsonl.zst").read_bytes()
    (tmp_path / "part.jsonl.zst").write_bytes(data[: len(data) // 2])
    with pytest.raises(EOFError, match="part.jsonl.zst"):
        io.read_text(url)


def test_multi_frame_zstd_reads_every_frame(tmp_path):
    import zstandard

    frames = [zstandard.ZstdCompressor().compress(f"frame {i}\n".encode()) for i in range(3)]
    (tmp_path / "multi.zst").write_bytes(b"".join(frames))
    assert io.read_text(str(tmp_path / "multi.zst")) == "frame 0\nframe 1\nframe 2\n"


def test_a_url_whose_filesystem_is_not_installed_names_the_url_and_the_package():
    import importlib.util

    from mdeberta.command import user_error

    if importlib.util.find_spec("s3fs"):
        pytest.skip("s3fs is installed here")
    with pytest.raises(ImportError) as error:
        io.url_to_fs("s3://bucket/clean")
    assert user_error(error.value) == "s3://bucket/clean: Install s3fs to access S3"
