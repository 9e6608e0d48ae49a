"""Decoding text files as people have them: the user's choice, else a BOM, else the charset the file declares,
else UTF-16/32 told by its zero bytes, else UTF-8 when the bytes are valid UTF-8, else detection
(charset-normalizer) among DETECTED_ENCODINGS. A decoding that looks wrong is never silent: it comes with a
warning for the user. Pure Python; extraction and the training-data import both decode with it."""
from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, field

from workers.common.errors import ReadableError
from workers.common.formats import DETECTED_ENCODINGS, bom_encoding, encoding_label, looks_binary, wide_encoding

# What detection reads of a long file: enough for the statistics, without reading 50 MB twice.
DETECTION_SAMPLE = 256 * 1024
# Candidates this close to the least "messy" decoding count as equally clean; language coherence decides.
MESS_TOLERANCE = 0.01
# The characters judged for looking garbled, and the share of odd ones among them (charset-normalizer's mess
# ratio) from which they do.
MESS_SAMPLE = 32 * 1024
GARBLED_MESS = 0.2
# UTF-8 read as Windows-1252 or Latin-1 and saved again ("Ã©" for "é", "â€™" for "’"): the text was already
# garbled before it reached us.
_DOUBLE_ENCODED = re.compile("[\u00c2\u00c3][\u0080-\u00bf\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac"
                             "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2122]|\u00e2\u20ac")


@dataclass
class Decoded:
    text: str
    encoding: str  # Python's codec name, e.g. "utf-8", "cp1251"
    warnings: list[str] = field(default_factory=list)


def decode_text(data: bytes, filename: str = "", *, encoding: str | None = None,
                declared: str | None = None) -> Decoded:
    """Decode a text file's bytes. `encoding` is the user's choice (it wins); `declared` is what the file says of
    itself (an HTML <meta charset>). Raises ReadableError for binary data, or for bytes a BOM calls UTF-16/32
    that are not."""
    filename = filename or "this file"
    if encoding:
        return _decode_chosen(data, filename, _codec(encoding) or "utf-8")
    bom = bom_encoding(data)
    if bom:
        return _decode_with_bom(data, filename, bom)
    declared = _codec(declared)
    if declared and not declared.startswith(("utf-16", "utf-32")):
        try:
            return _checked(data.decode(declared), declared, filename)
        except UnicodeDecodeError:
            pass  # pages often declare a charset they are not written in; detection reads what they are
    wide = wide_encoding(data)
    if wide:
        try:
            return _checked(data.decode(wide), wide, filename)
        except UnicodeDecodeError:
            raise ReadableError(f"'{filename}' is not valid {encoding_label(wide)} text.")
    if looks_binary(data):
        raise ReadableError(f"'{filename}' looks binary, not like text. Upload PDF, DOCX, PPTX, or a text file.")
    try:
        return _checked(data.decode("utf-8"), "utf-8", filename)
    except UnicodeDecodeError:
        pass
    detected = detect_encoding(data)
    decoded = _decode_chosen(data, filename, detected or "cp1252")
    if detected is None:
        decoded.warnings.insert(0, f"The encoding of '{filename}' could not be recognised, so it was read as "
                                   f"{encoding_label('cp1252')}. If its words look wrong, choose its encoding and "
                                   "extract it again.")
    return decoded


def detect_encoding(data: bytes) -> str | None:
    """The most likely of DETECTED_ENCODINGS for bytes that are not UTF-8, or None when none fits.

    charset-normalizer ranks candidates by how "messy" their decoding is; among those about as clean as the
    best, the one whose letters best fit a language wins, and then the more widely used code page (the list's
    order): Windows-1252 and Windows-1250 read most Western texts identically, for instance."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data[:DETECTION_SAMPLE], cp_isolation=DETECTED_ENCODINGS))
    if not matches:
        return None
    order = {codecs.lookup(name).name: position for position, name in enumerate(DETECTED_ENCODINGS)}

    def most_used(match) -> str:
        # A match stands for every encoding that decodes these bytes identically.
        names = [codecs.lookup(name).name for name in match.could_be_from_charset] or [match.encoding]
        return min(names, key=lambda name: order.get(name, len(order)))

    least = min(match.chaos for match in matches)
    clean = [match for match in matches if match.chaos <= least + MESS_TOLERANCE]
    best = max(clean, key=lambda match: (round(match.coherence, 2), -order.get(most_used(match), len(order))))
    return most_used(best)


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decode_with_bom(data: bytes, filename: str, encoding: str) -> Decoded:
    """A byte order mark promises an encoding; bytes that then break it (cut in the middle of a character, a lone
    surrogate) are an error: guessing another encoding would give garbled text."""
    try:
        return _checked(data.decode(encoding), encoding, filename)
    except UnicodeDecodeError as exc:
        unicode = encoding.removesuffix("-sig").upper()
        raise ReadableError(f"'{filename}' starts with a {unicode} byte order mark, but byte {exc.start:,} is not "
                            f"valid {unicode}. Save it again as UTF-8.") from None


def _decode_chosen(data: bytes, filename: str, encoding: str) -> Decoded:
    """Decode in an encoding that may not fit every byte: bytes that do not fit become U+FFFD, and say so."""
    text = data.decode(encoding, errors="replace")
    decoded = _checked(text, encoding, filename)
    replaced = text.count("\ufffd") - (data.count(b"\xef\xbf\xbd") if encoding == "utf-8" else 0)
    if replaced > 0:
        decoded.warnings.insert(0, f"{replaced:,} bytes of '{filename}' are not valid {encoding_label(encoding)} "
                                   "and were replaced by \ufffd. Choose the file's encoding and extract it again.")
    return decoded


def _checked(text: str, encoding: str, filename: str) -> Decoded:
    """The decoded text with a warning when it looks garbled: many odd characters for its script, or UTF-8
    that was saved again as if it were Windows-1252 (mojibake inside the file itself)."""
    text = text.lstrip("\ufeff")
    decoded = Decoded(text=text, encoding=encoding)
    if text.isascii():
        return decoded
    sample = text[:DETECTION_SAMPLE]
    double_encoded = len(_DOUBLE_ENCODED.findall(sample))
    if double_encoded >= 3 and double_encoded * 200 >= sum(1 for c in sample if not c.isascii()):
        decoded.warnings.append(f"'{filename}' looks garbled inside: it holds sequences such as \"Ã©\" where "
                                "letters such as \"é\" belong, as when UTF-8 text is saved again as Windows-1252. "
                                "Fix the file at its source, or check the text before training on it.")
        return decoded
    from charset_normalizer.md import mess_ratio

    sample = sample[:MESS_SAMPLE]
    if mess_ratio(sample, maximum_threshold=GARBLED_MESS) >= GARBLED_MESS or _mixed_script_share(sample) > 0.05:
        decoded.warnings.append(f"The text of '{filename}' looks garbled when read as {encoding_label(encoding)}. "
                                "If its words look wrong, choose its encoding and extract it again.")
    return decoded


_WORD = re.compile(r"[^\W\d_]{2,}")


def _mixed_script_share(text: str) -> float:
    """The share of words with letters beyond ASCII that mix scripts ("rйunion": Latin and Cyrillic), which
    real words never do and a text decoded with the wrong code page often does."""
    words = [word for word in _WORD.findall(text) if not word.isascii()]
    if not words:
        return 0.0
    mixed = sum(1 for word in words if len({_script(letter) for letter in word} & _ALPHABETS) > 1)
    return mixed / len(words)


# Scripts whose words never mix with each other (Japanese words do mix kanji and kana, so those stay out).
_ALPHABETS = {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "ARMENIAN", "GEORGIAN", "THAI"}


def _script(letter: str) -> str:
    # Unicode names start with the script: "LATIN SMALL LETTER A", "CYRILLIC SMALL LETTER IE".
    return unicodedata.name(letter, "UNKNOWN").split(" ", 1)[0]
