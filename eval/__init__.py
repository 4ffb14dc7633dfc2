"""Zero-shot cross-lingual evaluation: `mdeberta eval xnli`.

data.py and hub.py read XNLI/MultiNLI from the hub, XNLI 1.0 TSVs, MultiNLI jsonl, XNLI-MT TSVs
and save_to_disk directories into labelled pairs (nli.py: the label order, pairs, source specs);
finetune.py trains and scores a classifier (ours for our checkpoints, transformers' for any other
model); report.py writes xnli.json/.md/.png; xnli.py runs it all; config.py holds the settings and
cli.py the command.
"""
