"""EmotionML 1.0 (W3C Recommendation 2014): the scene's affect in the standard other affective tools read.

Our emotion and mood names are EmotionML's own `occ-categories` and
`pad-dimensions` vocabularies, so nothing is translated. Per character and
beat there are two `<emotion>` elements: the felt one (22 categories plus the
PAD mood, rescaled from [-1, 1] to EmotionML's [0, 1]) and the shown one,
marked `expressed-through`. Whose emotion it is, at which beat, and what
EmotionML has no place for (stance, behaviour, subtext, provenance) go in
`<info>` as elements of storydiff's namespace, which the schema admits there and
nowhere else; that is what lets `from_emotionml` rebuild the Scene. In a
document of several scenes each `<sd:scene>` carries its label (`sample 2,
scene 3 of 7`) and its emotions' ids start with the label's key
(`sample2_scene3-mara-b1-felt`), as the other exports name them.
"""
from __future__ import annotations

from lxml import etree

from ..errors import StorydiffError
from ..render import scene_labels
from ..scene import BeatEvent, CharacterBeat, Provenance, Scene, Subtext
from ..vocab import OCC_EMOTIONS, PAD, STANCE
from .scenes import SceneOrScenes, as_list

NS = "http://www.w3.org/2009/10/emotionml"
SD = "https://storydiff.org/ns/1.0"
CATEGORY_SET = "http://www.w3.org/TR/emotion-voc/xml#occ-categories"
DIMENSION_SET = "http://www.w3.org/TR/emotion-voc/xml#pad-dimensions"
# What a reader of the scene sees: the face, the voice, and the behaviour the body carries out.
EXPRESSED_THROUGH = "face voice body"
# Values out of [0, 1] by less than this are the projection's tolerance and are clamped; more is an
# error. It is the loosest tolerance a sampler projects with (`sampling.tolerance`, early steps), so
# that a run paused midway exports too; the finished scene is within 1e-6.
TOLERANCE = 1e-3


def to_emotionml(scenes: SceneOrScenes) -> str:
    """An `<emotionml>` document valid against the W3C schema; several scenes share one document."""
    many = as_list(scenes)
    nsmap = {None: NS, "sd": SD}
    root = etree.Element(_em("emotionml"), nsmap=nsmap, attrib={
        "version": "1.0", "category-set": CATEGORY_SET, "dimension-set": DIMENSION_SET})
    info = etree.SubElement(root, _em("info"))
    one = isinstance(scenes, Scene)
    holder = info if one else etree.SubElement(info, _sd("scenes"))
    labels = scene_labels(many)
    for index, (scene, label) in enumerate(zip(many, labels), 1):
        holder.append(_scene_info(scene, index, None if one else label.text))
    for index, (scene, label) in enumerate(zip(many, labels), 1):
        prefix = "" if one else f"{label.key}-"
        for row in scene.cells:
            for cell in row:
                root.append(_emotion(cell, index, prefix, "felt"))
                root.append(_emotion(cell, index, prefix, "shown"))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode("utf-8")


def from_emotionml(text: str) -> Scene | list[Scene]:
    """Read what `to_emotionml` wrote: a Scene, or a list for a multi-scene document."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(text.encode("utf-8"), parser)
    try:
        info = root.find(_em("info"))
        wrapper = info.find(_sd("scenes"))
        heads = (wrapper if wrapper is not None else info).findall(_sd("scene"))
        cells: dict[tuple[int, str, int], dict[str, etree._Element]] = {}
        for emotion in root.iterfind(_em("emotion")):
            where = emotion.find(f"{_em('info')}/{_sd('cell')}")
            key = (int(where.get("scene")), where.get("character"), int(where.get("beat")))
            cells.setdefault(key, {})[where.get("layer")] = emotion
        scenes = [_read_scene(head, cells) for head in heads]
    except (AttributeError, KeyError, TypeError) as exc:
        raise ValueError(f"not an EmotionML document written by storydiff ({exc!r})") from exc
    if not scenes:
        raise ValueError("not an EmotionML document written by storydiff (no <sd:scene> in its <info>)")
    return scenes if wrapper is not None else scenes[0]


def _em(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sd(tag: str) -> str:
    return f"{{{SD}}}{tag}"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _unit(value: float, what: str) -> str:
    """An EmotionML scale value; round-off just outside [0, 1] is clamped, anything else refused."""
    if not -TOLERANCE <= value <= 1 + TOLERANCE:
        raise StorydiffError(f"{what} = {value:.4g} lies outside [0, 1], which EmotionML cannot hold "
                             "(a scene sampled without projection?); export it as JSON instead")
    return repr(min(1.0, max(0.0, float(value))))


def _scene_info(scene: Scene, index: int, label: str | None) -> etree._Element:
    head = etree.Element(_sd("scene"), index=str(index), situation=scene.situation, title=scene.title,
                         setting=scene.setting, beats=str(scene.beats))
    if label is not None:
        head.set("label", label)
    etree.SubElement(head, _sd("provenance"), {k: _text(v) for k, v in scene.provenance.model_dump().items()})
    for cid in scene.cast:
        etree.SubElement(head, _sd("character"), id=cid, name=scene.names[cid])
    for event in scene.events:
        etree.SubElement(head, _sd("event"), beat=str(event.beat), id=event.id).text = event.text
    return head


def _emotion(cell: CharacterBeat, index: int, prefix: str, layer: str) -> etree._Element:
    emotion = etree.Element(_em("emotion"), id=f"{prefix}{cell.character}-b{cell.beat}-{layer}")
    if layer == "shown":
        emotion.set("expressed-through", EXPRESSED_THROUGH)
    where = etree.SubElement(etree.SubElement(emotion, _em("info")), _sd("cell"), scene=str(index),
                             character=cell.character, beat=str(cell.beat), layer=layer)
    if layer == "felt":
        for other, stance in cell.stance.items():
            etree.SubElement(where, _sd("stance"), {"toward": other, **{s: _text(stance[s]) for s in STANCE}})
        for row in cell.binding:
            etree.SubElement(where, _sd("binding")).text = row
    else:
        if cell.behaviour is not None:
            etree.SubElement(where, _sd("behaviour"), id=cell.behaviour).text = cell.behaviour_text
        for s in cell.subtext:
            etree.SubElement(where, _sd("subtext"), emotion=s.emotion)
    values = getattr(cell, layer)
    for e in OCC_EMOTIONS:
        etree.SubElement(emotion, _em("category"), name=e,
                         value=_unit(values[e], f"{cell.character}.{layer}.{e}@{cell.beat}"))
    if layer == "felt":
        for d in PAD:
            etree.SubElement(emotion, _em("dimension"), name=d,
                             value=_unit((cell.mood[d] + 1) / 2, f"{cell.character}.mood.{d}@{cell.beat} (rescaled)"))
    return emotion


def _read_scene(head: etree._Element, cells: dict[tuple[int, str, int], dict[str, etree._Element]]) -> Scene:
    index, beats = int(head.get("index")), int(head.get("beats"))
    characters = head.findall(_sd("character"))
    cast = [c.get("id") for c in characters]
    return Scene(
        situation=head.get("situation"), title=head.get("title"), setting=head.get("setting"), cast=cast,
        names={c.get("id"): c.get("name") for c in characters}, beats=beats,
        events=[BeatEvent(beat=int(e.get("beat")), id=e.get("id"), text=e.text or "")
                for e in head.findall(_sd("event"))],
        cells=[[_read_cell(cells[(index, cid, beat)], cid, beat) for cid in cast] for beat in range(1, beats + 1)],
        provenance=Provenance.model_validate(dict(head.find(_sd("provenance")).attrib)),
    )


def _read_cell(layers: dict[str, etree._Element], cid: str, beat: int) -> CharacterBeat:
    felt, shown = _categories(layers["felt"]), _categories(layers["shown"])
    felt_info = layers["felt"].find(f"{_em('info')}/{_sd('cell')}")
    shown_info = layers["shown"].find(f"{_em('info')}/{_sd('cell')}")
    dims = {d.get("name"): float(d.get("value")) for d in layers["felt"].iterfind(_em("dimension"))}
    behaviour = shown_info.find(_sd("behaviour"))
    return CharacterBeat(
        character=cid, beat=beat, felt=felt, shown=shown, mood={d: _signed(dims[d]) for d in PAD},
        stance={s.get("toward"): {k: float(s.get(k)) for k in STANCE} for s in felt_info.iterfind(_sd("stance"))},
        behaviour=behaviour.get("id") if behaviour is not None else None,
        behaviour_text=(behaviour.text or "") if behaviour is not None else None,
        subtext=[Subtext(emotion=e, felt=felt[e], shown=shown[e])
                 for e in (s.get("emotion") for s in shown_info.iterfind(_sd("subtext")))],
        binding=[b.text or "" for b in felt_info.iterfind(_sd("binding"))],
    )


def _signed(unit: float) -> float:
    """Undo the [-1, 1] → [0, 1] rescaling; rounding at 1e-12 drops the rescaling's last-bit noise."""
    return round(2 * unit - 1, 12)


def _categories(emotion: etree._Element) -> dict[str, float]:
    values = {c.get("name"): float(c.get("value")) for c in emotion.iterfind(_em("category"))}
    return {e: values[e] for e in OCC_EMOTIONS}
