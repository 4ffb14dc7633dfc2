"""Where the cleaning job's documents go: input files cut into chunks, one output part each.

Each language's documents of one input file are cut, in file order, into chunks that close once
they hold `shard_chars` characters read (`chunked`); a chunk becomes one part file, and a
language's parts are its files' chunks, files in the job's (sorted) order (`PartLayout`). A
document's chunk follows from its (file, position) alone, so a drop found by dedup reaches its
part without carrying more than the document's ref, and the parts are the same whatever the
number of workers. Between the steps the documents wait in scratch files (pipelines/scratch.py)
named by (file, batch, chunk).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator

from mdeberta.clean_corpus import part_name
from mdeberta.pipelines import scratch
from mdeberta.pipelines.dedup import Ref
from mdeberta.pipelines.read import RawDocument

Chunk = tuple[str, int, int]
"""(language, input file index, chunk number in the file): one output part."""


def raw_url(output: str, source: int, batch: int) -> str:
    return scratch.url(output, "raw", f"{source:05d}-{batch:07d}.pkl.zst")


def kept_url(output: str, chunk: Chunk, batch: int) -> str:
    lang, source, number = chunk
    return scratch.url(output, "kept", lang, f"{source:05d}-{number:05d}-{batch:07d}.pkl.zst")


def keys_url(output: str, source: int, batch: int) -> str:
    return scratch.url(output, "keys", f"{source:05d}-{batch:07d}.bin")


def drops_url(output: str, lang: str, bucket: int) -> str:
    return scratch.url(output, "drops", lang, f"{bucket:05d}.bin")


def chunked(docs: Iterable[RawDocument], shard_chars: int, starts: dict[str, list[int]]):
    """The documents as records (*document, chunk number); a language's chunk closes once it
    holds `shard_chars` characters read. `starts` gets each chunk's first position."""
    chars: dict[str, int] = {}
    for doc in docs:
        first = starts.setdefault(doc.lang, [])
        if not first or chars[doc.lang] >= shard_chars:
            first.append(doc.position)
            chars[doc.lang] = 0
        chars[doc.lang] += doc.chars
        yield (*doc, len(first) - 1)


class PartLayout:
    """Where the chunks go: a language's parts are its files' chunks, files in index order."""

    def __init__(self, chunks: dict[tuple[str, int], list[int]]):
        self.starts, self.first, self.parts = chunks, {}, {}
        for lang, source in sorted(chunks):
            self.first[lang, source] = self.parts.get(lang, 0)
            self.parts[lang] = self.parts.get(lang, 0) + len(chunks[lang, source])

    def part(self, chunk: Chunk) -> int:
        lang, source, number = chunk
        return self.first[lang, source] + number

    def name(self, chunk: Chunk) -> str:
        """The chunk's part file name in its language's folder."""
        return part_name(self.part(chunk), self.parts[chunk[0]])

    def chunk_of(self, lang: str, ref: Ref) -> Chunk:
        _, source, position = ref
        return lang, source, bisect_right(self.starts[lang, source], position) - 1

    def chunks(self) -> Iterator[Chunk]:
        for lang, source in sorted(self.starts):
            for number in range(len(self.starts[lang, source])):
                yield lang, source, number


class LayoutOnce:
    """For a DoFn whose "chunks" side input becomes a PartLayout once: in one global window the
    side input is the same for every element."""

    _layout: PartLayout | None = None

    def layout(self, chunks: dict) -> PartLayout:
        if self._layout is None:
            self._layout = PartLayout(chunks)
        return self._layout
