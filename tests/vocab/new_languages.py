"""Text of languages a small base vocabulary lacks, written here for the extend-vocab tests.

Amharic in Ethiopic script (a vocabulary of other scripts spells it byte by byte, or as [UNK]) and
Swahili in Latin script (a vocabulary of English and German text splits its words into many short
pieces): sentences drawn from a few dozen common words with a seed, enough for a unigram model to
learn whole words and frequent affixes.
"""

from __future__ import annotations

import hashlib
import random

WORDS = {
    "am": {
        "time": ["ዛሬ", "ነገ", "ትናንት", "ጠዋት", "ማታ", "ሁልጊዜ", "አሁን"],
        "subject": ["እኔ", "አንተ", "እሷ", "እሱ", "እኛ", "ልጁ", "ሰውየው", "መምህሩ", "ተማሪዎቹ", "እናቴ"],
        "adjective": ["ትልቅ", "ትንሽ", "ጥሩ", "አዲስ", "ቆንጆ", "ብዙ", "ጣፋጭ"],
        "object": ["ቡና", "ውሃ", "ምግብ", "መጽሐፍ", "ደብዳቤ", "ዳቦ", "ወተት", "ሻይ", "ገንዘብ", "ልብስ"],
        "place": ["ከከተማ", "ከገበያ", "ከትምህርት ቤት", "ከሆስፒታል", "ከአዲስ አበባ", "ከቢሮ", "ከሀገር"],
        "verb": ["ይወዳል", "ገዛ", "አመጣ", "ጠጣ", "በላ", "አነበበ", "ጻፈ", "ሰጠ", "ወሰደ", "ፈለገ"],
        "end": "።",
    },
    "sw": {
        "subject": ["Mimi", "Wewe", "Yeye", "Sisi", "Wao", "Mtoto", "Watoto", "Mwalimu", "Mama"],
        "verb": ["ninapenda", "unataka", "anasoma", "tunakula", "wanaenda", "anapika", "ananunua"],
        "object": ["chakula", "kitabu", "maji", "chai", "mpira", "barua", "nyumba", "habari"],
        "place": ["mjini", "nyumbani", "shuleni", "sokoni", "kijijini", "Nairobi", "Mombasa"],
        "time": ["leo", "kesho", "jana", "sasa", "asubuhi", "jioni", "kila siku", "pamoja"],
        "end": ".",
    },
}


def paragraphs(lang: str, n: int, seed: int = 0) -> list[str]:
    """`n` paragraphs of one to three sentences in `lang` ("am" or "sw")."""
    rng = random.Random(f"{lang}{seed}")
    words = WORDS[lang]
    slots = [k for k in words if k != "end"]
    out = []
    for _ in range(n):
        sentences = [
            " ".join(rng.choice(words[slot]) for slot in slots) + words["end"]
            for _ in range(rng.randint(1, 3))
        ]
        out.append(" ".join(sentences))
    return out


def docs(lang: str, n_docs: int, seed: int = 0, per_doc: int = 4) -> list[dict]:
    """Clean-corpus records {"id", "lang", "text"} of `per_doc` paragraphs each."""
    texts = paragraphs(lang, n_docs * per_doc, seed)
    records = []
    for i in range(n_docs):
        text = "\n".join(texts[i * per_doc : (i + 1) * per_doc])
        doc_id = hashlib.sha1(f"{lang}{i}{text}".encode()).hexdigest()
        records.append({"id": doc_id, "lang": lang, "text": text})
    return records
