"""Text recognition (OCR) of PDF pages without a text layer and of pictures in DOCX and PPTX: the Debian
package tesseract-ocr, called through pytesseract. Tesseract is a separate program, so it runs as a child of
the extraction process and inherits that process's memory limit; a reading that fails or takes too long costs
one page, never the worker.

    ocr = ocr_empty_pages(path, page_texts, limits=limits, deadline=deadline)  # fills in a PDF's empty pages
    ocr = DocumentOcr(limits=limits, deadline=deadline, things="pictures")
    text = ocr.picture(blob)               # "" for icons, photos without text, ...
    ocr.warnings, ocr.spans_in(text)       # sentences for the user; where the readings stand in the text

Only confidently read words are kept, and a reading that is mostly not words (a photo, a chart's lines) is
dropped, so pictures without text add no noise."""
from __future__ import annotations

import collections
import hashlib
import io
import math
import re
import shutil
import time

from workers.common.formats import Limits
from workers.engine.extract.base import Deadline, clean_text, no_progress, usable_cores

# Scans are read best at about 300 dots per inch; a huge page is rendered at less, so that one page's bitmap
# (one byte a pixel) stays within some 12 MB: A3 at 250 dpi. Tesseract's time grows with the pixels, too.
RENDER_DPI = 300
MAX_RENDER_PIXELS = 12_000_000
# Pictures smaller than this are icons, bullets and rules, not text worth reading.
MIN_PICTURE_SIDE = 32
MIN_PICTURE_PIXELS = 128 * 128
# The picture formats Office files hold whose pixels Pillow decodes (it reads the header of a WMF or EMF drawing,
# but cannot draw one).
RASTER_FORMATS = {"PNG", "JPEG", "MPO", "GIF", "BMP", "DIB", "TIFF", "WEBP"}
# A picture declaring more pixels than this is refused before it is decoded (a decompression bomb declares
# gigapixels in a few bytes; Pillow's own limit only warns below twice its default of 89 million).
MAX_PICTURE_PIXELS = 80_000_000
# Tesseract rates each word 0-100; true text on a clean scan scores above 85, shapes mistaken for letters mostly
# below 50.
MIN_WORD_CONFIDENCE = 60
# A reading is kept when at least this share of all the words tesseract found are confident and look like words
# (two letters or more): on a page of text nearly all are, in a photo or a drawing few of the marks it takes for
# words are.
MIN_WORDLIKE_SHARE = 0.5
_WORDLIKE = re.compile(r"[^\W\d_]{2,}")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_LANGUAGES = re.compile(r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")
# Tesseract settings: its default page segmentation (a whole page of columns and paragraphs); the word data
# comes back as TSV.
TESSERACT_CONFIG = "--psm 3"
# Tesseract reads a page on one core in one to three seconds; a scan's pages are read by up to this many at once.
MAX_PARALLEL_PAGES = 4
# OCR stops when this share of the document's time limit is left, and leaves the pages and pictures it has not
# read out with a warning: the rest of the extraction still finishes in time, with what was read.
RESERVED_TIME_SHARE = 0.1


# The share of a PDF's progress bar that its text pass fills; OCR of its pages without text, when any, fills the
# rest. Which pages need OCR is known only after the text pass, and both can take a while (a long file full of
# tables, a scan of many pages), so each has half.
TEXT_PASS_SHARE = 0.5


def split_progress(progress, share: float):
    """Two progress callbacks on one bar, so that its fractions only grow: the first reports into [0, share],
    the second into [share, 1]. `progress` may be None (nobody listens)."""
    progress = progress or no_progress
    return (lambda fraction, message="": progress(fraction * share, message),
            lambda fraction, message="": progress(share + fraction * (1 - share), message))


def ocr_empty_pages(path: str, pages: list[str], *, limits: Limits, deadline: Deadline,
                    progress=no_progress) -> "DocumentOcr":
    """Fill in by OCR the empty entries of `pages` (a PDF's cleaned page texts, changed in place); returns the
    DocumentOcr, whose `page_spans` and `warnings` tell what it read and left out."""
    ocr = DocumentOcr(limits=limits, deadline=deadline)
    empty = [index for index, text in enumerate(pages) if not text]
    for index, text in ocr.pdf_pages(path, empty, progress=progress).items():
        pages[index] = text
    return ocr


class DocumentOcr:
    """The OCR of one document within its limits: at most `limits.ocr_max_pages` pages and pictures read,
    each within `limits.ocr_page_seconds` and all within the document's deadline. Gathers `warnings` about
    what was left out, and `readings`: the texts read, in the order they were read."""

    def __init__(self, *, limits: Limits, deadline: Deadline, things: str = "scanned pages"):
        self.things = things  # what is read, for the warnings: "scanned pages", "pictures"
        self.limits = limits
        self.deadline = deadline
        self.readings: list[str] = []
        self.pages: dict[int, str] = {}  # PDF pages read: {page index: text}
        self.offered = 0  # pictures offered, read or not
        self.read = 0  # pages and pictures handed to tesseract, counted against ocr_max_pages
        self.left_out = 0  # those the limit left out
        self.timed_out = 0  # those past the per-page timeout
        self.out_of_time = 0  # those left out because the document's time was running out
        self.failed: list[str] = []  # why tesseract failed, one entry a page or picture
        self.unavailable: str | None = None  # why OCR cannot run on this server, once known
        self._checked = False
        self._seen: set[bytes] = set()  # digests of pictures already read (a logo on every slide is read once)

    # ------------------------------------------------------------------------------------------ PDF pages

    def pdf_pages(self, path: str, indexes: list[int], *, progress=no_progress) -> dict[int, str]:
        """{page index: text} for the given pages of a PDF (those without a text layer); pages past the limit
        are left out with a warning. `progress(fraction, message)` hears about each page, with fractions from
        0 to 1.

        This thread renders the pages in order (pdfium is not thread-safe); tesseract, a process of its own,
        reads up to MAX_PARALLEL_PAGES of them at once, and their results are taken in page order."""
        import concurrent.futures

        import pypdfium2 as pdfium

        if not indexes or not self._ready():
            progress(1.0, "")  # nothing to read: the bar's OCR half is done
            return self.pages
        document = pdfium.PdfDocument(path)
        try:
            # A page that draws no picture is blank (a long manual has dozens): nothing there for tesseract to read.
            indexes = [index for index in indexes if _draws_pictures(document, index)]
            chosen = indexes[:max(0, self.limits.ocr_max_pages)]
            self.left_out += len(indexes) - len(chosen)
            cpus = usable_cores()
            workers = max(1, min(MAX_PARALLEL_PAGES, cpus, len(chosen) or 1))
            pending: collections.deque = collections.deque()  # (page index, timeout, future), in page order
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                for number, index in enumerate(chosen, start=1):
                    if self.unavailable:
                        break
                    timeout = self._timeout()
                    if timeout <= 0:
                        self.out_of_time += len(chosen) - number + 1
                        break
                    progress((number - 1) / len(chosen), f"Reading page {index + 1} of {len(document)} by OCR")
                    try:
                        image = _render(document, index)
                    except pdfium.PdfiumError as exc:
                        self.failed.append(f"page {index + 1} could not be drawn ({exc})")
                        continue
                    pending.append((index, timeout, pool.submit(self._tesseract, image, timeout)))
                    if len(pending) >= workers:
                        self._take_page(*pending.popleft())
                while pending:
                    self._take_page(*pending.popleft())
        finally:
            document.close()
        progress(1.0, f"Read {len(chosen)} pages by OCR")
        return self.pages

    def _take_page(self, index: int, timeout: float, future) -> None:
        text = self._take(future.result, timeout, f"page {index + 1}")
        if text:
            self.pages[index] = text

    # ------------------------------------------------------------------------------------------ pictures

    def picture(self, blob: bytes, *, before_reading=None) -> str:
        """The text of a picture (a DOCX or PPTX image part's bytes), or "" for one too small to hold text, one
        already read, one that is no raster image (EMF, SVG), or one past the limit. `before_reading()` is
        called just before tesseract runs (for progress)."""
        self.offered += 1
        if not self._ready():
            return ""
        digest = hashlib.sha1(blob).digest()
        if digest in self._seen:
            return ""
        self._seen.add(digest)
        image = _open_picture(blob)
        if image is None:
            return ""
        if self.read >= self.limits.ocr_max_pages:
            self.left_out += 1
            return ""
        timeout = self._timeout()
        if timeout <= 0:
            self.out_of_time += 1
            return ""
        if before_reading is not None:
            before_reading()
        try:
            image = _decoded(image)
        except (OSError, ValueError, SyntaxError, EOFError):
            self.failed.append("a picture's data is damaged")
            return ""
        return self._take(lambda: self._tesseract(image, timeout), timeout, "a picture")

    # ------------------------------------------------------------------------------------------ results

    @property
    def warnings(self) -> list[str]:
        """Sentences for the user about pages and pictures OCR did not read."""
        out = []
        if self.unavailable:
            out.append(self.unavailable)
        if self.left_out:
            out.append(f"OCR read the first {self.read:,} of {self.read + self.left_out:,} {self.things} and left out "
                       f"the rest (the limit is GARAGE_OCR_MAX_PAGES={self.limits.ocr_max_pages}).")
        if self.timed_out:
            out.append(f"OCR took longer than {self.limits.ocr_page_seconds:g} seconds on {self.timed_out:,} of the "
                       f"{self.things}, which were left out (the limit is GARAGE_OCR_PAGE_TIMEOUT).")
        if self.out_of_time:
            out.append(f"OCR ran out of time and left out {self.out_of_time:,} of the {self.things} (a document may "
                       f"take {self.deadline.seconds:g} seconds, GARAGE_EXTRACT_TIME_LIMIT; fewer pages are read in "
                       "time with a lower GARAGE_OCR_MAX_PAGES).")
        if self.failed:
            out.append(f"OCR could not read {len(self.failed):,} of the {self.things}: {self.failed[0]}.")
        return out

    def why_no_text(self) -> str:
        """Why OCR found no text at all, for the error of a document that has none."""
        if not self.limits.ocr:
            return ("Text recognition (OCR) is turned off on this server (GARAGE_OCR); upload a file with "
                    "selectable text.")
        if self.warnings:
            return " ".join(self.warnings)
        return "Text recognition (OCR) found no readable text in it either."

    def page_spans(self, offsets: list[int]) -> list[list[int]]:
        """The [start, end) ranges of the PDF pages read, from where join_pages placed each page."""
        return [[offsets[index], offsets[index] + len(text)] for index, text in sorted(self.pages.items())]

    def spans_in(self, text: str) -> list[list[int]]:
        """The [start, end) ranges of `text` that hold the readings. Each reading is clean text, so it stands
        verbatim in the document's cleaned text; readings come in document order, so each is looked for
        after the one before."""
        spans, cursor = [], 0
        for reading in self.readings:
            start = text.find(reading, cursor)
            if start >= 0:
                spans.append([start, start + len(reading)])
                cursor = start + len(reading)
        return spans

    # ------------------------------------------------------------------------------------------ tesseract

    def _ready(self) -> bool:
        """Whether OCR is on and can run here; the first call looks for tesseract and its language data."""
        if not self.limits.ocr:
            return False
        if not self._checked:
            self._checked = True
            self.unavailable = _unavailable_reason(self.limits.ocr_languages)
        return self.unavailable is None

    def _timeout(self) -> float:
        """Seconds the next reading may take: the per-page limit, or less where the time OCR may use of the
        document's is nearer (math.inf for neither); 0 or less when that time is up."""
        remaining = math.inf
        if self.deadline.ends is not None:
            remaining = self.deadline.ends - RESERVED_TIME_SHARE * self.deadline.seconds - time.monotonic()
        return min(self.limits.ocr_page_seconds, remaining) if self.limits.ocr_page_seconds > 0 else remaining

    def _tesseract(self, image, timeout: float) -> dict:
        """Tesseract's word table of one image; runs in any thread."""
        import pytesseract

        return pytesseract.image_to_data(image, lang=self.limits.ocr_languages, config=TESSERACT_CONFIG,
                                         timeout=0 if math.isinf(timeout) else timeout,
                                         output_type=pytesseract.Output.DICT)

    def _take(self, reading, timeout: float, what: str) -> str:
        """The confident text of one reading (`reading()` returns tesseract's word table or raises what it
        raised), "" when none. A reading that failed, ran past the per-page timeout or was cut short for the
        document's time limit is counted for the warnings."""
        import pytesseract

        self.read += 1
        try:
            data = reading()
        except pytesseract.TesseractNotFoundError:
            self.unavailable = _missing_tesseract_message()
            return ""
        except pytesseract.TesseractError as exc:
            self.failed.append(_failure(what, exc, self.limits))
            return ""
        except RuntimeError as exc:  # pytesseract's timeout: it has killed tesseract already
            if "timeout" not in str(exc).lower():
                raise
            if timeout < self.limits.ocr_page_seconds or self.limits.ocr_page_seconds <= 0:
                self.out_of_time += 1
            else:
                self.timed_out += 1
            return ""
        text = confident_text(data)
        if text:
            self.readings.append(text)
        return text


def confident_text(data: dict) -> str:
    """Rebuild text from tesseract's word table: confident words only, a line a line and a blank line between
    paragraphs; "" when what is left is mostly not words."""
    lines: dict[tuple, list[str]] = {}
    found = 0
    for word, confidence, block, paragraph, line in zip(data["text"], data["conf"], data["block_num"],
                                                         data["par_num"], data["line_num"]):
        word = (word or "").strip()
        found += bool(word)
        if word and float(confidence) >= MIN_WORD_CONFIDENCE:
            lines.setdefault((block, paragraph, line), []).append(word)
    # A line of lone marks (rules, table borders read as "|" or "—") says nothing.
    lines = {key: words for key, words in lines.items() if any(_LETTER_OR_DIGIT.search(w) for w in words)}
    wordlike = sum(1 for words in lines.values() for w in words if _WORDLIKE.search(w))
    if wordlike < 2 or wordlike < MIN_WORDLIKE_SHARE * found:
        return ""
    parts, previous = [], None
    for (block, paragraph, _), line_words in lines.items():
        if previous is not None:
            parts.append("\n" if previous == (block, paragraph) else "\n\n")
        parts.append(" ".join(line_words))
        previous = (block, paragraph)
    return clean_text("".join(parts))


def _draws_pictures(document, index: int) -> bool:
    """Whether a PDF page draws a picture (or a form object, which may hold one): a scan always does."""
    import pypdfium2.raw as pdfium_c

    page = document[index]
    try:
        kinds = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM)
        return any(pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(page, number)) in kinds
                   for number in range(pdfium_c.FPDFPage_CountObjects(page)))
    finally:
        page.close()


def _render(document, index: int):
    """The page as a grayscale PIL image at RENDER_DPI, or less for a page too large for MAX_RENDER_PIXELS."""
    page = document[index]
    try:
        width, height = page.get_size()
        scale = RENDER_DPI / 72
        if width * height * scale * scale > MAX_RENDER_PIXELS:
            scale = math.sqrt(MAX_RENDER_PIXELS / max(1.0, width * height))
        return page.render(scale=scale, grayscale=True).to_pil()
    finally:
        page.close()


def _open_picture(blob: bytes):
    """The picture as a PIL image (not yet decoded), or None when it is no raster image Pillow reads (a vector
    drawing, SVG), too small to hold text, or declares too many pixels."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(blob))
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None
    if image.format not in RASTER_FORMATS:
        return None
    width, height = image.size
    if min(width, height) < MIN_PICTURE_SIDE or not MIN_PICTURE_PIXELS <= width * height <= MAX_PICTURE_PIXELS:
        return None
    return image


def _decoded(image):
    """The picture decoded as grayscale on white (transparent parts would turn black and hide dark text), no
    larger than a rendered page. Raises what Pillow raises for damaged data."""
    from PIL import Image

    width, height = image.size
    if width * height > MAX_RENDER_PIXELS:
        # JPEG decodes at a fraction of its size for less time and memory.
        shrink = math.sqrt(MAX_RENDER_PIXELS / (width * height))
        image.draft("L", (int(width * shrink), int(height * shrink)))
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.new("RGBA", rgba.size, "white")
        image.alpha_composite(rgba)
    image = image.convert("L")
    if image.width * image.height > MAX_RENDER_PIXELS:
        shrink = math.sqrt(MAX_RENDER_PIXELS / (image.width * image.height))
        image = image.resize((int(image.width * shrink), int(image.height * shrink)))
    return image


def _unavailable_reason(languages: str) -> str | None:
    """Why OCR cannot run here (no tesseract, no data for a language), or None when it can."""
    if not _LANGUAGES.match(languages or ""):
        return (f"Text recognition (OCR) is set up with languages '{languages}', which tesseract does not take: "
                "set GARAGE_OCR_LANGUAGES to codes such as eng or eng+deu.")
    try:
        import pytesseract
    except ImportError:
        return ("Text recognition (OCR) needs the pytesseract Python package, which is not installed on this "
                "server: ask an administrator to install the project's dependencies again.")
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return _missing_tesseract_message()
    try:
        installed = set(pytesseract.get_languages())
    except (pytesseract.TesseractError, pytesseract.TesseractNotFoundError, OSError):
        return _missing_tesseract_message()
    missing = [code for code in languages.split("+") if code not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        return (f"Text recognition (OCR) has no data for the language {', '.join(missing)} on this server: ask an "
                f"administrator to install the package {packages} (or change GARAGE_OCR_LANGUAGES).")
    return None


def _missing_tesseract_message() -> str:
    return ("Text recognition (OCR) needs the tesseract-ocr package, which is not installed on this server: ask an "
            "administrator to install tesseract-ocr and tesseract-ocr-eng (apt-get install tesseract-ocr "
            "tesseract-ocr-eng).")


def _failure(what: str, exc, limits: Limits) -> str:
    """Why tesseract failed on one page or picture, in a few words."""
    status = getattr(exc, "status", 0)
    if isinstance(status, int) and status < 0:
        # Killed by a signal: an allocation failed under the extraction process's memory limit (it aborts), or
        # it was killed from outside.
        return (f"reading {what} stopped tesseract (signal {-status}), which happens when it needs more than "
                f"the memory limit of {limits.memory_mb:,} MB (GARAGE_EXTRACT_MEMORY_MB)")
    message = " ".join(str(getattr(exc, "message", "") or exc).split())[:200]
    return f"tesseract failed on {what} ({message})"
