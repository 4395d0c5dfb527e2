"""Emergency red flags: phrases in a question that call for emergency services.

The portal is not an emergency service. A matching question shows the patient
a "call your local emergency number now" notice and is marked urgent.
"""

import re

RED_FLAG_PHRASES = [
    "chest pain",
    "chest pressure",
    "crushing chest",
    "heart attack",
    "can't breathe",
    "cannot breathe",
    "can not breathe",
    "struggling to breathe",
    "difficulty breathing",
    "shortness of breath",
    "stroke",
    "face drooping",
    "slurred speech",
    "sudden weakness",
    "sudden numbness",
    "suicidal",
    "suicide",
    "kill myself",
    "end my life",
    "self-harm",
    "self harm",
    "heavy bleeding",
    "bleeding heavily",
    "won't stop bleeding",
    "unconscious",
    "passed out",
    "seizure",
    "overdose",
    "anaphylaxis",
    "throat swelling",
    "coughing up blood",
    "vomiting blood",
    "worst headache",
]

_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in RED_FLAG_PHRASES) + r")\b",
    re.IGNORECASE,
)


def find_red_flags(*texts: str) -> list[str]:
    """The red-flag phrases found in the texts, lower-cased, each once, in order."""
    found: list[str] = []
    for text in texts:
        for match in _PATTERN.finditer(text or ""):
            phrase = " ".join(match.group(1).lower().split())
            if phrase not in found:
                found.append(phrase)
    return found
