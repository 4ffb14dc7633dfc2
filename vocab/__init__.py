"""The vocabulary stage: `mdeberta build-vocab` and `mdeberta extend-vocab`.

- ``vocab.config``: VocabConfig, every setting (recorded whole in the manifest).
- ``vocab.build``: the steps: α-sample the clean corpus (pipelines.sample_vocab, Beam), check
  the size and memory, train, write the directory, manifest last.
- ``vocab.train``: the SentencePiece trainer spec, memory estimate, size checks, training.
- ``vocab.tokenizer``: the Hugging Face files (tokenizer.json written from spm.model so that
  transformers gives SentencePiece's ids), mDeBERTa's special ids.
- ``vocab.report``: report.json / report.md per language and script.
- ``vocab.extend``: extend-vocab's steps (a base vocabulary + a clean corpus -> an extended
  vocabulary, every base id kept); ``vocab.extend_config``, ``vocab.extend_pieces`` (which pieces,
  their scores, the extended spm.model), ``vocab.extend_report`` (before/after per language).
- ``vocab.cli``: the typer commands.

The vocabulary directory: spm.model, spm.vocab, tokenizer.json, tokenizer_config.json,
special_tokens_map.json, report.json, report.md, manifest.json (kind "vocabulary", with
spm_sha256, vocab_size including [MASK], special_ids, the full trainer spec and the sampling plan).
"""
