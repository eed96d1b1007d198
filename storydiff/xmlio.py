"""Safe reading of writers' XML files, with errors that point at the place to fix.

Writers' files are untrusted input. They are parsed without DTDs, entity
expansion or network access; files over 10 MB are refused before they are
read; every failure (encoding, syntax, schema) becomes a `Problem` with the
line and column of the element or attribute at fault, in words a writer can
act on rather than libxml2's.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files
from pathlib import Path

from lxml import etree

from .errors import Problem, ValidationError
from .vocab import OCC_EMOTIONS

NAMESPACE = "https://storydiff.org/ns/1.0"
VERSION = "1.0"
KINDS: tuple[str, ...] = ("character", "culture", "situation", "story")
MAX_BYTES = 10 * 1024 * 1024
_XS = "{http://www.w3.org/2001/XMLSchema}"

# Markup in document order; start tags are matched to elements one by one to find exact columns.
_MARKUP = re.compile(
    r"<!--.*?-->|<\?.*?\?>|<!\[CDATA\[.*?\]\]>|<!DOCTYPE(?:[^\[>]|\[.*?\])*>|</[^>]*>"
    r"|<(?P<tag>[^\s/>]+)(?P<attrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>",
    re.DOTALL,
)
_ATTRIBUTE = re.compile(r"""([^\s=/]+)\s*=\s*(?:"[^"]*"|'[^']*')""")


def _problem(path: str, line: int, column: int, code: str, message: str) -> Problem:
    return Problem(path=path, line=max(line, 1), column=max(column, 1), code=code, message=message)


@dataclass
class Document:
    """A parsed file with its text, so every element and attribute can be located exactly."""

    path: str
    tree: etree._ElementTree
    text: str

    @property
    def root(self) -> etree._Element:
        return self.tree.getroot()

    @property
    def kind(self) -> str:
        return etree.QName(self.root).localname

    def elements(self) -> list[etree._Element]:
        """Every element in document order (comments and processing instructions left out)."""
        return [e for e in self.root.iter() if isinstance(e.tag, str)]

    @cached_property
    def _newlines(self) -> list[int]:
        return [m.start() for m in re.finditer("\n", self.text)]

    @cached_property
    def _start_tags(self) -> list[re.Match]:
        return [m for m in _MARKUP.finditer(self.text) if m["tag"]]

    @cached_property
    def _order(self) -> dict[str, int]:
        return {self.tree.getpath(e): i for i, e in enumerate(self.elements())}

    def _line_column(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self._newlines, offset)
        start = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - start + 1

    def _tag(self, element: etree._Element) -> re.Match | None:
        index = self._order.get(self.tree.getpath(element))
        tags = self._start_tags
        return tags[index] if index is not None and len(tags) == len(self._order) else None

    def position(self, element: etree._Element, attribute: str | None = None) -> tuple[int, int]:
        """Line and column (from 1) of an element's `<`, or of one of its attributes' name."""
        for name, line, column in self.attribute_positions(element):
            if name == attribute:
                return line, column
        tag = self._tag(element)
        return self._line_column(tag.start()) if tag else (element.sourceline or 1, 1)

    def attribute_positions(self, element: etree._Element) -> list[tuple[str, int, int]]:
        """(name, line, column) of each attribute as written in the element's start tag."""
        tag = self._tag(element)
        if tag is None:
            return []
        return [(m.group(1), *self._line_column(tag.start("attrs") + m.start()))
                for m in _ATTRIBUTE.finditer(tag["attrs"])]

    def problem(self, element: etree._Element, code: str, message: str, attribute: str | None = None) -> Problem:
        line, column = self.position(element, attribute)
        return _problem(self.path, line, column, code, message)


# ---------------------------------------------------------------- parsing

_SYNTAX_CODES = {
    "ERR_TAG_NAME_MISMATCH": "unclosed-tag",
    "ERR_TAG_NOT_FINISHED": "unclosed-tag",
    "ERR_DOCUMENT_EMPTY": "empty-file",
    "ERR_INVALID_ENCODING": "bad-encoding",
    "ERR_UNSUPPORTED_ENCODING": "bad-encoding",
    "ERR_INVALID_CHAR": "bad-encoding",
    "ERR_UNDECLARED_ENTITY": "undefined-entity",
}
_SYNTAX_HINTS = {
    "unclosed-tag": "close every element (<name>…</name>, or <range …/> for an empty one)",
    "empty-file": "a storydiff file holds one <character>, <culture>, <situation> or <story> element",
    "bad-encoding": "save the file as UTF-8, or declare its real encoding in <?xml version=\"1.0\" encoding=\"…\"?>",
    "undefined-entity": "only &amp; &lt; &gt; &quot; &apos; and numeric references such as &#233; are allowed",
    "xml-syntax": "check the markup at this place",
}


def _too_large(path: str) -> ValidationError:
    return ValidationError([_problem(path, 1, 1, "too-large", f"the file is larger than {MAX_BYTES // 2**20} MB; "
                                                              "storydiff files are small, so this is probably not one")])


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, refusing large files before reading them (a bounded read guards special files)."""
    shown = str(path)
    if path.stat().st_size > MAX_BYTES:
        raise _too_large(shown)
    with path.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _too_large(shown)
    if not data.strip():
        raise ValidationError([_problem(shown, 1, 1, "empty-file", f"the file is empty; {_SYNTAX_HINTS['empty-file']}")])
    return data


def _refuse_doctype(path: str, data: bytes) -> None:
    """DTDs can define entities that expand without bound or read other files; storydiff never needs one."""
    at = data.find(b"<!DOCTYPE")
    if at >= 0:
        line = data.count(b"\n", 0, at) + 1
        column = at - (data.rfind(b"\n", 0, at) + 1) + 1
        raise ValidationError([_doctype_problem(path, line, column)])


def _doctype_problem(path: str, line: int, column: int) -> Problem:
    return _problem(path, line, column, "doctype",
                    "DOCTYPE declarations are not allowed (their entities could expand without limit "
                    "or read other files); remove the <!DOCTYPE …> block")


_SYNTAX_WORDS = (
    (r"Opening and ending tag mismatch: (\S+) line (\d+) and (\S+)",
     r"<\1> opened on line \2 is not closed before </\3>; add </\1>"),
    (r"Premature end of data in tag (\S+) line (\d+)",
     r"the file ends before <\1> from line \2 is closed; add </\1>"),
    (r"Invalid bytes in character encoding",
     "these bytes are not valid in the file's encoding; " + _SYNTAX_HINTS["bad-encoding"]),
)


def _syntax_message(message: str, code: str) -> str:
    # libxml2 may follow its message with a line echoing the source; the location already points there
    message = message.strip().splitlines()[0].strip().rstrip(".")
    for pattern, words in _SYNTAX_WORDS:
        if re.match(pattern, message):
            return re.sub(pattern, words, message)
    return f"{message}; {_SYNTAX_HINTS[code]}"


def _syntax_problems(path: str, parser: etree.XMLParser) -> list[Problem]:
    """The first fatal error (libxml2 stops there), in a writer's words."""
    for entry in parser.error_log.filter_from_errors():
        code = _SYNTAX_CODES.get(entry.type_name, "xml-syntax")
        return [_problem(path, entry.line, entry.column, code, _syntax_message(entry.message, code))]
    return [_problem(path, 1, 1, "xml-syntax", "the file is not well-formed XML")]


def _decode(data: bytes, encoding: str | None) -> str:
    codec = (encoding or "utf-8").lower()
    return data.decode("utf-8-sig" if codec in ("utf-8", "utf8") else codec, errors="replace")


def _check_root(doc: Document) -> None:
    root = doc.root
    name = etree.QName(root)
    if name.namespace == NAMESPACE and name.localname in KINDS:
        return
    if name.localname in KINDS:
        message = f"<{name.localname}> is not in the storydiff namespace; add xmlns=\"{NAMESPACE}\" to it"
        raise ValidationError([doc.problem(root, "wrong-namespace", message)])
    kinds = ", ".join(f"<{k}>" for k in KINDS)
    raise ValidationError([doc.problem(root, "unknown-root",
                                       f"<{name.localname}> is not a storydiff file; the root element is one of {kinds}")])


def parse(path: str | Path) -> Document:
    """Parse one file safely; raises ValidationError for anything that is not a storydiff document."""
    path = Path(path)
    shown = str(path)
    data = _read_bytes(path)
    _refuse_doctype(shown, data)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        tree = etree.fromstring(data, parser).getroottree()
    except etree.XMLSyntaxError:
        raise ValidationError(_syntax_problems(shown, parser)) from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ValidationError([_doctype_problem(shown, 1, 1)])
    doc = Document(shown, tree, _decode(data, tree.docinfo.encoding))
    _check_root(doc)
    return doc


# ---------------------------------------------------------------- schema validation

@cache
def _schema_tree(name: str) -> etree._ElementTree:
    """One XSD file as XML, shipped in the package as storydiff.schemas."""
    return etree.parse(str(files("storydiff.schemas") / f"{name}.xsd"))


@cache
def schema(kind: str) -> etree.XMLSchema:
    """The XSD of one format."""
    return etree.XMLSchema(_schema_tree(kind))


@cache
def element_names(kind: str) -> frozenset[str]:
    """Every element name one format's XSD declares."""
    return frozenset(e.get("name") for e in _schema_tree(kind).iter(f"{_XS}element"))


@cache
def attribute_names(kind: str, element: str) -> tuple[str, ...]:
    """The attributes one element of a format takes, as its XSD declares them (for hints)."""
    decl = next((d for d in _schema_tree(kind).iter(f"{_XS}element") if d.get("name") == element), None)
    named = (decl.get("type") or "").partition(":")[2] if decl is not None else ""
    if named:
        shared = _schema_tree("common").iter(f"{_XS}complexType")
        decl = next((t for t in shared if t.get("name") == named), None)
        return tuple(a.get("name") for a in decl.iter(f"{_XS}attribute")) if decl is not None else ()
    if decl is None:
        return ()
    return tuple(a.get("name") for a in decl.iter(f"{_XS}attribute") if next(a.iterancestors(f"{_XS}element")) is decl)


_LOG = re.compile(r"^Element '(?P<element>[^']+)'(?:, attribute '(?P<attribute>[^']+)')?: (?P<rest>.*?)\.?$", re.DOTALL)
_VALUE = re.compile(r"[Tt]he value '(?P<value>[^']*)'")
_TYPE_WORDS = {
    "unit": "a decimal number from 0 to 1 (like 0.25)",
    "signed": "a decimal number from -1 to 1 (like -0.3)",
    "score": "a decimal number from 0 to 100",
    "xs:boolean": "true or false",
    "xs:positiveInteger": "a whole number from 1",
    "beatCount": "a whole number from 1 to 1000",
    "xs:decimal": "a decimal number",
}


def _strip_namespaces(text: str) -> str:
    return re.sub(r"\{[^}'\s]*\}", "", text)


def _listed(rest: str) -> list[str]:
    """The names libxml2 lists: an enumeration's `{'a', 'b'}` or an `Expected is ( a, b )`."""
    inner = re.search(r"\{([^}]*)\}", rest) or re.search(r"Expected is (?:one of )?\(([^)]*)\)", rest)
    return [n.strip(" '") for n in inner.group(1).split(",")] if inner else []


def _explain_value(element: str, attribute: str, type_name: str, rest: str) -> tuple[str, str]:
    value = (_VALUE.search(rest) or re.match(r"'(?P<value>[^']*)'", rest) or {"value": ""})["value"]
    said = f"<{element} {attribute}=\"{value}\">"
    if type_name == "SCHEMAV_CVC_ENUMERATION_VALID":
        allowed = _listed(rest)
        if attribute == "version":
            return "bad-version", f"{said}: storydiff reads version {VERSION} files; write version=\"{VERSION}\""
        if tuple(allowed) == OCC_EMOTIONS:
            return "unknown-emotion", f"{said}: '{value}' is not an emotion; use one of: {', '.join(allowed)}"
        return "bad-value", f"{said}: use one of: {', '.join(allowed)}"
    if type_name == "SCHEMAV_CVC_PATTERN_VALID":
        return "bad-id", (f"{said}: not a valid id; start with a letter or _ and use only letters, digits, "
                          "_ and - (no dots or spaces)")
    if type_name in ("SCHEMAV_CVC_MAXINCLUSIVE_VALID", "SCHEMAV_CVC_MININCLUSIVE_VALID"):
        bound = re.search(r"\('([^']*)'\)", rest)
        side = "above the maximum" if "MAX" in type_name else "below the minimum"
        return "out-of-range", f"{said}: {value} is {side} {bound.group(1) if bound else ''}".rstrip()
    if type_name == "SCHEMAV_CVC_MINLENGTH_VALID":
        return "empty-value", f"<{element}>: {attribute} must not be empty"
    atomic = re.search(r"type '([^']*)'", rest)
    words = _TYPE_WORDS.get(atomic.group(1) if atomic else "", "a valid value")
    return "bad-value", f"{said}: '{value}' is not {words}"


def _explain_element(element: str, type_name: str, rest: str, kind: str) -> tuple[str, str]:
    expected = ", ".join(f"<{n}>" for n in _listed(rest))
    missing = re.match(r"The attribute '([^']+)' is required but missing", rest)
    if missing:
        return "missing-attribute", f"<{element}> needs the attribute {missing.group(1)}"
    if "Missing child element" in rest:
        return "missing-element", f"<{element}> is missing {expected or 'a child element'}"
    if "not expected" in rest:
        where = f"; expected {expected}" if expected else ""
        if element in element_names(kind):
            return "unexpected-element", (f"<{element}> is out of place here{where} "
                                          "(single elements come first, in the order docs/formats.md gives)")
        return "unexpected-element", f"<{element}> is not part of the {kind} format{where}"
    if type_name == "SCHEMAV_CVC_MINLENGTH_VALID":
        return "empty-value", f"<{element}> must not be empty; write its text between the tags"
    if "content type is empty" in rest:
        return "unexpected-content", f"<{element}> takes attributes only, no text or child elements"
    if "simple type" in rest:
        return "unexpected-content", f"<{element}> holds text only, no child elements"
    if "element-only" in rest:
        return "unexpected-content", f"<{element}> holds elements only, not text"
    return "schema", f"<{element}>: {rest}"


def _explain(entry: etree._LogEntry, kind: str) -> tuple[str, str, str | None]:
    """(code, message, attribute at fault) for one XSD error, in a writer's words."""
    m = _LOG.match(_strip_namespaces(entry.message.strip()))
    if not m:
        return "schema", _strip_namespaces(entry.message.strip()), None
    element, attribute, rest = m["element"], m["attribute"], m["rest"]
    if attribute is None:
        code, message = _explain_element(element, entry.type_name, rest, kind)
        return code, message, None
    if "is not allowed" in rest:
        takes = ", ".join(attribute_names(kind, element)) or "none"
        return "unknown-attribute", f"<{element}> has no attribute '{attribute}' (it takes: {takes})", attribute
    code, message = _explain_value(element, attribute, entry.type_name, rest)
    return code, message, attribute


Found = list[tuple[Problem, str | None]]  # problems, each with the attribute at fault


def _schema_pass(xsd: etree.XMLSchema, work: etree._ElementTree, doc: Document,
                 origin: dict[int, etree._Element]) -> tuple[Found, list[etree._Element]]:
    """One validation of the working copy: (problem, attribute) pairs, and the copy's misplaced elements."""
    xsd.validate(work)
    found, misplaced = [], []
    for entry in xsd.error_log:
        nodes = work.xpath(entry.path) if entry.path else []
        element = origin.get(id(nodes[0])) if nodes else None
        code, message, attribute = _explain(entry, doc.kind)
        if element is None:
            found.append((_problem(doc.path, entry.line, 1, code, message), None))
            continue
        found.append((doc.problem(element, code, message, attribute), attribute))
        if code == "unexpected-element":
            misplaced.append(nodes[0])
    return found, misplaced


def check_schema(doc: Document) -> list[Problem]:
    """Every XSD error in the document, each at its element or attribute.

    libxml2 stops checking an element's remaining children after one that is out
    of place; such a child is removed from a copy and the copy checked again, so
    one misplaced element does not hide the errors after it. An attribute gets one
    problem (a list type repeats its item's error).
    """
    xsd = schema(doc.kind)
    work = etree.ElementTree(etree.fromstring(etree.tostring(doc.root)))
    originals = doc.elements()
    copies = [e for e in work.getroot().iter() if isinstance(e.tag, str)]
    origin = {id(c): o for c, o in zip(copies, originals)}
    found: Found = []
    for _ in originals:
        more, misplaced = _schema_pass(xsd, work, doc, origin)
        found += more
        for element in misplaced:
            element.getparent().remove(element)
        if not misplaced:
            break
    seen: set = set()
    problems = []
    for problem, attribute in found:
        key = (problem.line, problem.column) if attribute else problem
        if key not in seen:
            seen.add(key)
            problems.append(problem)
    return problems


def read(path: str | Path) -> Document:
    """Parse and schema-check one file; raises ValidationError with every problem found."""
    doc = parse(path)
    problems = check_schema(doc)
    if problems:
        raise ValidationError(problems)
    return doc
