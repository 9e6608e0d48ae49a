"""HTML: the visible text only, with headings, paragraphs, list items and tables kept apart. An HTML5 parser
(Lexbor, through selectolax) builds the tree exactly as browsers do, so broken markup (a stray closing tag in
<head>, a head never closed, text after </html>, tags closed in the wrong order, very deep nesting) reads as a
browser shows it; a walk over the tree collects the text."""
from __future__ import annotations

import re

from workers.engine.extract.base import Deadline, Extracted, clean_text, markdown_table
from workers.common.encodings import decode_text

# Elements whose content is never shown as text.
_HIDDEN = {"script", "style", "head", "noscript", "template", "svg", "math", "iframe", "object", "canvas", "select",
           "button", "textarea"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_BLOCK = {"p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote", "figure",
          "figcaption", "address", "form", "fieldset", "details", "summary", "dl", "dt", "dd", "ul", "ol", "body",
          "html", "hr", "caption"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_SPACES = re.compile(r"\s+")
_LINE_BREAK = "\ue000"  # stands for <br> until runs of spaces are collapsed (a private-use character, not whitespace)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class _TextCollector:
    """Collects the text of a tree walk (start tag, text, end tag, in document order) as blocks."""

    def __init__(self):
        self.blocks: list[str] = []
        self.line: list[str] = []
        self.prefix = ""
        self.item = False  # whether the line being collected is a list item
        self.hidden_depth = 0
        self.hidden_stack: list[str] = []
        self.pre = 0
        self.list_stack: list[list] = []  # [tag, counter]
        self.table_stack: list[dict] = []

    # Text goes into the current line; a block boundary flushes the line as a paragraph.
    def flush(self):
        text = "".join(self.line)
        self.line = []
        if not self.pre:
            text = _SPACES.sub(" ", text).replace(f" {_LINE_BREAK}", _LINE_BREAK).replace(f"{_LINE_BREAK} ", _LINE_BREAK)
            text = text.replace(_LINE_BREAK, "\n").strip()
        if text:
            target = self.table_stack[-1]["cell"] if self.table_stack and self.table_stack[-1]["cell"] is not None else None
            if target is not None:
                target.append(text)
            else:
                self.blocks.append((self.item, self.prefix + text))
        self.prefix = ""
        self.item = False

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            if tag == "br" and not self.hidden_depth:
                # A line break inside a paragraph; in a table cell it is only a space, as cells keep to one line.
                self.line.append("\n" if self.pre else (" " if self.table_stack else _LINE_BREAK))
            elif tag == "hr" and not self.hidden_depth:
                self.flush()
            return
        attributes = dict(attrs)
        hidden = (tag in _HIDDEN or "hidden" in attributes or attributes.get("aria-hidden") == "true"
                  or _DISPLAY_NONE.search(attributes.get("style") or ""))
        if self.hidden_depth or hidden:
            self.hidden_depth += 1
            self.hidden_stack.append(tag)
            return
        if tag in _HEADINGS:
            self.flush()
            self.prefix = "#" * _HEADINGS[tag] + " "
        elif tag == "li":
            self.flush()
            depth = max(0, len(self.list_stack) - 1)
            self.item = True
            if self.list_stack and self.list_stack[-1][0] == "ol":
                self.list_stack[-1][1] += 1
                self.prefix = "  " * depth + f"{self.list_stack[-1][1]}. "
            else:
                self.prefix = "  " * depth + "- "
        elif tag in ("ul", "ol"):
            self.flush()
            self.list_stack.append([tag, 0])
        elif tag == "pre":
            self.flush()
            self.pre += 1
        elif tag == "table":
            self.flush()
            self.table_stack.append({"rows": [], "row": None, "cell": None})
        elif tag == "tr" and self.table_stack:
            self.table_stack[-1]["row"] = []
        elif tag in ("td", "th") and self.table_stack:
            self.flush()
            table = self.table_stack[-1]
            if table["row"] is None:
                table["row"] = []
            table["cell"] = []
        elif tag in _BLOCK:
            self.flush()

    def handle_endtag(self, tag):
        if self.hidden_depth:
            if tag in self.hidden_stack:
                # Close up to the matching tag, tolerating unclosed elements inside the hidden one.
                while self.hidden_stack:
                    self.hidden_depth -= 1
                    if self.hidden_stack.pop() == tag:
                        break
            return
        if tag in _HEADINGS or tag == "li" or tag in _BLOCK:
            self.flush()
            if tag in ("ul", "ol") and self.list_stack:
                self.list_stack.pop()
        elif tag == "pre":
            self.flush()
            self.pre = max(0, self.pre - 1)
        elif tag in ("td", "th") and self.table_stack:
            self.end_cell()
        elif tag == "tr" and self.table_stack:
            self.end_row()
        elif tag == "table" and self.table_stack:
            self.end_row()
            table = self.table_stack.pop()
            rendered = markdown_table(table["rows"])
            if rendered:
                if self.table_stack and self.table_stack[-1]["cell"] is not None:
                    # A table inside a cell: its rows become that cell's text.
                    self.table_stack[-1]["cell"].append("; ".join(" ".join(r) for r in table["rows"]))
                else:
                    self.blocks.append((False, rendered))

    def end_cell(self):
        self.flush()
        table = self.table_stack[-1]
        if table["cell"] is not None:
            if table["row"] is None:
                table["row"] = []
            table["row"].append(" ".join(table["cell"]))
            table["cell"] = None

    def end_row(self):
        table = self.table_stack[-1]
        if table["cell"] is not None:
            self.end_cell()
        if table["row"]:
            table["rows"].append(table["row"])
        table["row"] = None

    def handle_data(self, data):
        if not self.hidden_depth:
            self.line.append(data)

    def close(self):
        while self.table_stack:
            self.handle_endtag("table")
        self.flush()


def html_charset(data: bytes) -> str | None:
    """The encoding a page declares in a <meta> tag near its start, when Python knows it."""
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    import codecs

    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except (LookupError, UnicodeDecodeError):
        return None


# The deadline is checked every this many nodes of the walk.
_CHECK_EVERY = 2000


def html_to_text(markup: str, deadline: Deadline | None = None) -> str:
    from selectolax.lexbor import LexborHTMLParser

    collector = _TextCollector()
    root = LexborHTMLParser(markup).root
    if root is not None:
        for number, (entering, node) in enumerate(_walk(root)):
            if deadline is not None and number % _CHECK_EVERY == 0:
                deadline.check()
            tag = node.tag
            if tag == "-text":
                if entering:
                    collector.handle_data(node.text_content or "")
            elif not tag.startswith("-"):  # comments and the doctype hold no visible text
                if entering:
                    collector.handle_starttag(tag, list(node.attributes.items()))
                else:
                    collector.handle_endtag(tag)
    collector.close()
    # List items follow each other line by line; other blocks are paragraphs apart.
    parts, previous_item = [], False
    for is_item, block in collector.blocks:
        if parts:
            parts.append("\n" if is_item and previous_item else "\n\n")
        parts.append(block.rstrip())
        previous_item = is_item
    return clean_text("".join(parts))


def _walk(root):
    """(True, node) on entering and (False, node) on leaving each node under `root`, in document order, without
    recursion: a hostile page may nest elements many thousands deep. Nodes are fresh objects on each access
    (and comparing them is slow), so the depth tells when the walk is back at the root."""
    node, depth = root, 0
    while True:
        yield True, node
        child = node.child
        if child is not None:
            node, depth = child, depth + 1
            continue
        while True:
            yield False, node
            if depth == 0:
                return
            following = node.next
            if following is not None:
                node = following
                break
            node, depth = node.parent, depth - 1


def extract_html(data: bytes, *, filename: str, deadline: Deadline | None = None,
                 encoding: str | None = None) -> Extracted:
    decoded = decode_text(data, filename, encoding=encoding, declared=html_charset(data))
    return Extracted(text=html_to_text(decoded.text, deadline), format="html", encoding=decoded.encoding,
                     warnings=decoded.warnings)
