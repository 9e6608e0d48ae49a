"""DOCX (python-docx) and PPTX (python-pptx), opened only after their zip directory passed the limits. Pictures
in the body of a DOCX and on slides are read by OCR (workers.engine.extract.ocr), their text put where they stand."""
from __future__ import annotations

import re
import zipfile

from workers.common.errors import ReadableError
from workers.common.formats import Limits, check_zip
from workers.engine.extract.base import (Deadline, Extracted, clean_text, damaged, join_pages, markdown_table,
                                         no_progress)
from workers.engine.extract.ocr import DocumentOcr

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# A picture in a paragraph: DrawingML's blip (r:embed names the image part), or a legacy VML image (r:id).
A_BLIP = "{http://schemas.openxmlformats.org/drawingml/2006/main}blip"
V_IMAGEDATA = "{urn:schemas-microsoft-com:vml}imagedata"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.I)


# ---------------------------------------------------------------------------------------------- DOCX


class _Word:
    def __init__(self, document, deadline: Deadline, ocr: DocumentOcr, progress=no_progress):
        self.document = document
        self.deadline = deadline
        self.ocr = ocr
        self.progress = progress
        self.pictures = sum(1 for _ in document.element.body.iter(A_BLIP, V_IMAGEDATA))  # for progress
        self.pictures_seen = 0
        self.style_names = {s.style_id: s.name or "" for s in document.styles}
        self.numbering = self._numbering_formats()
        self.tables = 0
        self.last_item = False  # whether the paragraph just rendered is a list item

    def _numbering_formats(self) -> dict:
        """(numId, level) → numFmt ("bullet", "decimal", ...) from the numbering part, when there is one."""
        formats: dict = {}
        try:
            numbering = self.document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return formats
        abstract = {}
        for node in numbering.iterchildren(f"{W}abstractNum"):
            levels = {}
            for lvl in node.iterchildren(f"{W}lvl"):
                fmt = lvl.find(f"{W}numFmt")
                levels[lvl.get(f"{W}ilvl")] = fmt.get(f"{W}val") if fmt is not None else "bullet"
            abstract[node.get(f"{W}abstractNumId")] = levels
        for num in numbering.iterchildren(f"{W}num"):
            ref = num.find(f"{W}abstractNumId")
            if ref is not None:
                for level, fmt in abstract.get(ref.get(f"{W}val"), {}).items():
                    formats[(num.get(f"{W}numId"), level)] = fmt
        return formats

    def paragraph(self, p) -> str:
        self.last_item = False
        text = "".join(_run_texts(p))
        text = " ".join(text.split()) if "\n" not in text else "\n".join(" ".join(line.split()) for line in text.split("\n"))
        if not text:
            return ""
        ppr = p.find(f"{W}pPr")
        style_id, num_id, level = "", None, "0"
        if ppr is not None:
            style = ppr.find(f"{W}pStyle")
            style_id = style.get(f"{W}val") if style is not None else ""
            numpr = ppr.find(f"{W}numPr")
            if numpr is not None:
                ilvl, nid = numpr.find(f"{W}ilvl"), numpr.find(f"{W}numId")
                level = ilvl.get(f"{W}val") if ilvl is not None else "0"
                num_id = nid.get(f"{W}val") if nid is not None else None
        name = self.style_names.get(style_id, style_id)
        heading = _HEADING_STYLE.match(name)
        if heading:
            return "#" * int(heading.group(1)) + " " + text
        if name.lower() == "title":
            return "# " + text
        if num_id not in (None, "0") or name.lower().startswith("list"):
            indent = "  " * (int(level) if level.isdigit() else 0)
            fmt = self.numbering.get((num_id, level), "")
            numbered = fmt not in ("", "bullet", "none") or "number" in name.lower()
            self.last_item = True
            return f"{indent}{'1.' if numbered else '-'} {text}"
        return text

    def table(self, tbl) -> str:
        self.tables += 1
        rows = []
        for tr in tbl.iterchildren(f"{W}tr"):
            row = []
            for tc in tr.iterchildren(f"{W}tc"):
                tcpr = tc.find(f"{W}tcPr")
                span, continued = 1, False
                if tcpr is not None:
                    grid = tcpr.find(f"{W}gridSpan")
                    if grid is not None and (grid.get(f"{W}val") or "1").isdigit():
                        span = int(grid.get(f"{W}val"))
                    merge = tcpr.find(f"{W}vMerge")
                    continued = merge is not None and merge.get(f"{W}val") in (None, "continue")
                # A cell merged with the one above is shown empty: its text already stands in the row above.
                text = "" if continued else self.cell_text(tc)
                row.append(text)
                row.extend([""] * (span - 1))
            rows.append(row)
        return markdown_table(rows)

    def cell_text(self, tc) -> str:
        parts = []
        for child in tc.iterchildren():
            if child.tag == f"{W}p":
                parts.append(" ".join("".join(_run_texts(child)).split()))
            elif child.tag == f"{W}tbl":
                # A table inside a cell: its rows become part of the cell's text.
                for tr in child.iterchildren(f"{W}tr"):
                    parts.append(" ".join(self.cell_text(tc) for tc in tr.iterchildren(f"{W}tc")))
        return " ".join(p for p in parts if p)

    def blocks(self, container, pictures: bool = False) -> list[tuple[str, bool, bool]]:
        """(text, starts_a_page, is_list_item) for each paragraph and table of a body, header or footer, in order.
        With `pictures`, the text OCR reads in a paragraph's pictures follows the paragraph's own (only the
        body's: a header's pictures are logos, and their relationships belong to the header's part)."""
        out = []
        for child in container.iterchildren():
            tag = child.tag
            if tag == f"{W}p":
                self.deadline.check()
                text, item = self.paragraph(child), self.last_item
                read = self.picture_texts(child) if pictures else []
                if read:
                    text, item = "\n\n".join(t for t in [text, *read] if t), False
                out.append((text, _page_break_before(child), item))
            elif tag == f"{W}tbl":
                self.deadline.check()
                out.append((self.table(child), False, False))
            elif tag == f"{W}sdt":
                content = child.find(f"{W}sdtContent")
                if content is not None:
                    out.extend(self.blocks(content, pictures))
        return out

    def picture_texts(self, p) -> list[str]:
        """The texts OCR reads in a body paragraph's pictures."""
        texts = []
        for node in p.iter(A_BLIP, V_IMAGEDATA):
            self.pictures_seen += 1
            try:
                blob = self.document.part.related_parts[node.get(f"{R}embed") or node.get(f"{R}id")].blob
            except (KeyError, AttributeError):
                continue  # a linked picture, outside the file
            number = self.pictures_seen
            text = self.ocr.picture(blob, before_reading=lambda: self.progress(
                (number - 1) / self.pictures, f"Reading picture {number} of {self.pictures} by OCR"))
            if text:
                texts.append(text)
        return texts


def _run_texts(p):
    """The visible text of a paragraph in order: runs (also inside hyperlinks, fields and insertions), tabs and
    line breaks; deleted text is left out."""
    for node in p.iter(f"{W}t", f"{W}tab", f"{W}br", f"{W}cr", f"{W}noBreakHyphen"):
        tag = node.tag
        if tag == f"{W}t":
            yield node.text or ""
        elif tag == f"{W}tab":
            yield "\t" if node.getparent().tag == f"{W}r" else ""
        elif tag in (f"{W}br", f"{W}cr"):
            if node.get(f"{W}type") not in ("page", "column"):
                yield "\n"
        elif tag == f"{W}noBreakHyphen":
            yield "-"


_RENDERED_BREAK = f"{W}lastRenderedPageBreak"


def _page_break_before(p) -> bool:
    """Whether Word last laid this paragraph out at the top of a page, or it must start one."""
    ppr = p.find(f"{W}pPr")
    if ppr is not None and ppr.find(f"{W}pageBreakBefore") is not None:
        return True
    return next(p.iter(_RENDERED_BREAK), None) is not None


def _hard_break_after(p) -> bool:
    return any(br.get(f"{W}type") == "page" for br in p.iter(f"{W}br"))


def extract_docx(path: str, *, filename: str, limits: Limits, deadline: Deadline, progress=None) -> Extracted:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    with zipfile.ZipFile(path) as zf:
        names = check_zip(zf, filename=filename, limits=limits)
    if "word/document.xml" not in names:
        raise ReadableError(f"'{filename}' is not a Word document: it has no word/document.xml inside.")
    try:
        document = docx.Document(path)
        _drop_fallbacks(document)
        ocr = DocumentOcr(limits=limits, deadline=deadline, things="pictures")
        word = _Word(document, deadline, ocr, progress or no_progress)
        body = word.blocks(document.element.body, pictures=True)
        # Pages: Word records where it last broke pages (lastRenderedPageBreak); files from other programs
        # only have explicit page breaks, after which the next block starts a page.
        rendered = any(starts for _, starts, _ in body)
        pages: list[list[tuple[str, bool]]] = [[]]
        hard_pending = False
        for (text, starts, item), child in zip(body, _block_elements(document.element.body)):
            if pages[-1] and ((rendered and starts) or (not rendered and hard_pending)):
                pages.append([])
            hard_pending = False
            if text:
                pages[-1].append((text, item))
            if not rendered and child is not None and child.tag == f"{W}p" and _hard_break_after(child):
                hard_pending = True
        headers, footers = _headers_footers(document, word)
    except ReadableError:
        raise
    except (PackageNotFoundError, KeyError, ValueError, AttributeError, TypeError, zipfile.BadZipFile, OSError,
            SyntaxError) as exc:  # lxml's XMLSyntaxError is a SyntaxError
        raise damaged(filename, "a Word document (DOCX)", exc)
    # Headers and footers repeat on every page; they are kept once, at the start and the end.
    if headers:
        pages[0][:0] = [(h, False) for h in headers]
    if footers:
        pages[-1].extend((f, False) for f in footers)
    text, offsets = join_pages([clean_text(_join_blocks(blocks)) for blocks in pages])
    if not text.strip() and ocr.offered:
        raise ReadableError(f"'{filename}' holds no text, only pictures. {ocr.why_no_text()}")
    return Extracted(text=text, format="docx", pages=len(pages), page_offsets=offsets, tables=word.tables,
                     ocr_spans=ocr.spans_in(text), warnings=ocr.warnings)


def _join_blocks(blocks: list[tuple[str, bool]]) -> str:
    """Blocks a blank line apart, except list items that follow each other, which stay on consecutive lines."""
    parts, previous_item = [], False
    for text, item in blocks:
        if parts:
            parts.append("\n" if item and previous_item else "\n\n")
        parts.append(text)
        previous_item = item
    return "".join(parts)


MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def _drop_fallbacks(document) -> None:
    """Remove the fallback copies Word keeps of text boxes and shapes for older readers, so their text is read
    once (the document is only read, never saved)."""
    parts = [document.element] + [rel.target_part.element for rel in document.part.rels.values()
                                  if not rel.is_external and hasattr(rel.target_part, "element")]
    for root in parts:
        for fallback in list(root.iter(MC_FALLBACK)):
            fallback.getparent().remove(fallback)


def _block_elements(body):
    """The elements that Word.blocks turned into blocks, in the same order (content controls opened)."""
    for child in body.iterchildren():
        if child.tag in (f"{W}p", f"{W}tbl"):
            yield child
        elif child.tag == f"{W}sdt":
            content = child.find(f"{W}sdtContent")
            if content is not None:
                yield from _block_elements(content)


def _headers_footers(document, word: _Word) -> tuple[list[str], list[str]]:
    seen: set[str] = set()
    found: dict[str, list[str]] = {"header": [], "footer": []}
    for section in document.sections:
        for kind in ("header", "footer"):
            for part in (getattr(section, f"first_page_{kind}"), getattr(section, kind), getattr(section, f"even_page_{kind}")):
                # A linked header has no definition of its own; reading it would make one up.
                if part.is_linked_to_previous:
                    continue
                text = clean_text("\n".join(t for t, _, _ in word.blocks(part._element) if t))
                if text and text not in seen:
                    seen.add(text)
                    found[kind].append(text)
    return found["header"], found["footer"]


# ---------------------------------------------------------------------------------------------- PPTX


def extract_pptx(path: str, *, filename: str, limits: Limits, deadline: Deadline, progress=None) -> Extracted:
    import pptx
    from pptx.exc import PackageNotFoundError

    with zipfile.ZipFile(path) as zf:
        names = check_zip(zf, filename=filename, limits=limits)
    if "ppt/presentation.xml" not in names:
        raise ReadableError(f"'{filename}' is not a PowerPoint presentation: it has no ppt/presentation.xml inside.")
    tables = 0
    slides_text = []
    progress = progress or no_progress
    ocr = DocumentOcr(limits=limits, deadline=deadline, things="pictures")
    try:
        presentation = pptx.Presentation(path)
        slides = list(presentation.slides)
        for number, slide in enumerate(slides, start=1):
            deadline.check()

            def read_picture(blob: bytes, number=number) -> str:
                return ocr.picture(blob, before_reading=lambda: progress(
                    (number - 1) / len(slides), f"Reading slide {number} of {len(slides)} by OCR"))

            blocks, slide_tables = _slide_blocks(slide, read_picture)
            tables += slide_tables
            slides_text.append(clean_text("\n\n".join(blocks)))
            progress(number / max(1, len(slides)), f"Slide {number} of {len(slides)}")
    except ReadableError:
        raise
    except (PackageNotFoundError, KeyError, ValueError, AttributeError, TypeError, IndexError, zipfile.BadZipFile,
            OSError, SyntaxError) as exc:
        raise damaged(filename, "a PowerPoint presentation (PPTX)", exc)
    text, offsets = join_pages(slides_text)
    if not text.strip() and ocr.offered:
        raise ReadableError(f"'{filename}' holds no text, only pictures. {ocr.why_no_text()}")
    return Extracted(text=text, format="pptx", pages=len(slides_text), page_offsets=offsets, tables=tables,
                     ocr_spans=ocr.spans_in(text), warnings=ocr.warnings)


def _slide_blocks(slide, read_picture=None) -> tuple[list[str], int]:
    """A slide's title first, then its shapes top to bottom and left to right (a picture by the text OCR reads in
    it, through `read_picture(blob)`), then the speaker notes."""
    title_shape = None
    try:
        title_shape = slide.shapes.title
    except (KeyError, AttributeError):
        pass
    blocks, tables = [], 0
    if title_shape is not None and title_shape.has_text_frame:
        title = " ".join(title_shape.text_frame.text.split())
        if title:
            blocks.append(f"# {title}")
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        text, is_table = _shape_text(shape, read_picture)
        tables += is_table
        if text:
            blocks.append(text)
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = clean_text(frame.text) if frame is not None else ""
        if notes:
            blocks.append(f"Speaker notes: {notes}")
    return blocks, tables


def _reading_order(shapes):
    def position(shape):
        return (shape.top or 0, shape.left or 0)

    try:
        return sorted(shapes, key=position)
    except (TypeError, ValueError, AttributeError):
        return list(shapes)


def _shape_text(shape, read_picture=None) -> tuple[str, int]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE
    from pptx.shapes.picture import Picture

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        parts, tables = [], 0
        for inner in _reading_order(shape.shapes):
            text, is_table = _shape_text(inner, read_picture)
            tables += is_table
            if text:
                parts.append(text)
        return "\n\n".join(parts), tables
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        return markdown_table(rows), 1
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines = []
        for paragraph in shape.text_frame.paragraphs:
            line = " ".join(paragraph.text.split())
            if line:
                lines.append("  " * (paragraph.level or 0) + line)
        return "\n".join(lines), 0
    if read_picture is not None and isinstance(shape, Picture):
        try:
            blob = shape.image.blob
        except (KeyError, ValueError, AttributeError):
            return "", 0  # a linked picture, outside the file
        return read_picture(blob), 0
    return "", 0
