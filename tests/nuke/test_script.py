"""The VfxMatte node as Nuke script text: a small parser of the TCL-like syntax checks it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest
from vfxmatte_nuke.graph import CHILDREN
from vfxmatte_nuke.knobs import KNOB_TYPE_IDS, KnobSpec, knob_list
from vfxmatte_nuke.script import group_script, knob_line, tcl_word, write_gizmo

from vfxmatte.worker.schema import config_schema

# -- a parser of Nuke's script syntax --------------------------------------------------------


class ScriptError(AssertionError):
    pass


@dataclass
class Word:
    text: str  # the value after TCL quoting rules (braces and quotes removed)
    kind: str  # bare, quoted, braced, command


def _quoted(src: str, i: int) -> tuple[str, int]:
    """A double-quoted word starting at ``src[i] == '"'``; returns (value, index after)."""
    out, i = [], i + 1
    escapes = {"n": "\n", "t": "\t"}
    while i < len(src):
        c = src[i]
        if c == "\\":
            if i + 1 >= len(src):
                raise ScriptError("a backslash at the end of the text")
            out.append(escapes.get(src[i + 1], src[i + 1]))
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        if c == "[":
            raise ScriptError(f"unescaped '[' (TCL command substitution) in a quoted word at {i}")
        if c == "$":
            raise ScriptError(f"unescaped '$' (TCL variable substitution) in a quoted word at {i}")
        out.append(c)
        i += 1
    raise ScriptError("an unterminated double-quoted word")


def _braced(src: str, i: int, open_c: str = "{", close_c: str = "}") -> tuple[str, int]:
    """A braced word; braces nest; a backslash escapes the next character."""
    depth, start, i = 1, i + 1, i + 1
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return src[start:i], i + 1
        i += 1
    raise ScriptError(f"unbalanced '{open_c}'")


def commands(src: str) -> list[list[Word]]:
    """Split script text into commands (newline-separated) of words."""
    result, words, i = [], [], 0
    while i < len(src):
        c = src[i]
        if c == "\n":
            if words:
                result.append(words)
            words, i = [], i + 1
        elif c in " \t\r":
            i += 1
        elif c == '"':
            text, i = _quoted(src, i)
            words.append(Word(text, "quoted"))
        elif c == "{":
            text, i = _braced(src, i)
            words.append(Word(text, "braced"))
        elif c == "[":
            text, i = _braced(src, i, "[", "]")
            words.append(Word(text, "command"))
        elif c in "}]":
            raise ScriptError(f"unbalanced '{c}' at {i}")
        else:
            j = i
            while j < len(src) and src[j] not in ' \t\r\n{}[]"':
                j += 1
            words.append(Word(src[i:j], "bare"))
            i = j
    if words:
        result.append(words)
    return result


@dataclass
class UserKnob:
    type_id: int
    name: str
    options: dict = field(default_factory=dict)
    flags: list = field(default_factory=list)


_OPTION_ARITY = {"l": 1, "t": 1, "M": 1, "T": 1, "n": 1, "R": 2}
_FLAGS = {"+STARTLINE", "-STARTLINE", "+INVISIBLE", "+HIDDEN", "+DISABLED"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NODE_CLASSES = {"Group", "Gizmo", "Input", "Output", "Read", "Switch"}
_BUILTIN_KNOBS = {
    "inputs",
    "name",
    "help",
    "tile_color",
    "xpos",
    "ypos",
    "label",
    "number",
    "file",
    "raw",
    "on_error",
    "first",
    "last",
    "origfirst",
    "origlast",
    "which",
}


def parse_user_knob(body: str) -> UserKnob:
    words = [w for c in commands(body) for w in c]
    if len(words) < 2 or not words[0].text.isdigit():
        raise ScriptError(f"addUserKnob needs a type number and a name: {body!r}")
    knob = UserKnob(int(words[0].text), words[1].text)
    if knob.type_id not in set(KNOB_TYPE_IDS.values()):
        raise ScriptError(f"unknown knob type {knob.type_id}")
    if not _NAME.match(knob.name):
        raise ScriptError(f"bad knob name {knob.name!r}")
    i = 2
    while i < len(words):
        word = words[i].text
        if word in _FLAGS:
            knob.flags.append(word)
            i += 1
        elif word in _OPTION_ARITY:
            n = _OPTION_ARITY[word]
            if i + n > len(words) - 1:
                raise ScriptError(f"option {word} of {knob.name} lacks its value")
            values = words[i + 1 : i + 1 + n]
            if word == "M" and values[0].kind != "braced":
                raise ScriptError("M takes a braced list")
            if word == "R":
                for value in values:
                    float(value.text)
            if word == "n" and values[0].text not in ("1", "-1"):
                raise ScriptError(f"n takes 1 or -1, got {values[0].text}")
            knob.options[word] = values if n > 1 else values[0]
            i += 1 + n
        else:
            raise ScriptError(f"unknown addUserKnob word {word!r} in {knob.name}")
    return knob


def check_node_body(body: str) -> tuple[list[UserKnob], dict[str, Word]]:
    """The user knobs of a node body and its knob values, checked against each other."""
    knobs: list[UserKnob] = []
    values: dict[str, Word] = {}
    declared: dict[str, UserKnob] = {}
    depth = 0
    for words in commands(body):
        head = words[0].text
        if head == "addUserKnob":
            if len(words) != 2 or words[1].kind != "braced":
                raise ScriptError("addUserKnob takes one braced word")
            knob = parse_user_knob(words[1].text)
            if knob.name in declared:
                raise ScriptError(f"knob {knob.name} declared twice")
            if knob.type_id == 20:
                n = knob.options.get("n")
                if n is None and depth:
                    raise ScriptError(f"tab {knob.name} inside an open group")
                depth += {None: 0, "1": 1, "-1": -1}[n.text if n else None]
                if depth < 0:
                    raise ScriptError("a group closed that was not open")
            declared[knob.name] = knob
            knobs.append(knob)
            continue
        if len(words) != 2:
            raise ScriptError(f"a knob value line has one value: {[w.text for w in words]}")
        if head not in declared and head not in _BUILTIN_KNOBS:
            raise ScriptError(f"value for the undeclared knob {head!r}")
        values[head] = words[1]
        knob = declared.get(head)
        if knob is None:
            continue
        text = words[1].text
        if knob.type_id == 4:
            items = [w.text for c in commands(knob.options["M"].text) for w in c]
            if text not in items:
                raise ScriptError(f"{head} = {text!r} is not one of {items}")
        elif knob.type_id == 6 and text not in ("true", "false"):
            raise ScriptError(f"{head} = {text!r} is not a boolean")
        elif knob.type_id == 3:
            int(text)
        elif knob.type_id == 7:
            float(text)
        elif knob.type_id == 20 and text not in ("0", "1"):
            raise ScriptError(f"group {head} open state {text!r}")
    if depth:
        raise ScriptError("a group left open")
    return knobs, values


def check_script(text: str) -> dict:
    """Parse a whole script: the Group/Gizmo, its inner nodes, the stack.

    The stack holds node names; a node with ``inputs N`` takes the top N entries,
    the top one as input 0 (Nuke's rule), and pushes itself.
    """
    variables: dict[str, str] = {}
    stack = ["(selection)"]  # what Nuke's stack holds when text is pasted
    group = None
    children = []
    ended = False
    for words in commands(text):
        head = words[0].text
        if head == "set":
            if len(words) != 3 or words[2].kind != "command" or words[2].text != "stack 0":
                raise ScriptError(f"set takes a name and [stack 0]: {[w.text for w in words]}")
            variables[words[1].text] = stack[-1] if stack else "(empty)"
        elif head == "version":
            assert re.fullmatch(r"\d+\.\d+", words[1].text)
        elif head == "push":
            target = words[1].text
            if target == "0":
                stack.append("(nothing)")
            elif target.startswith("$") and target[1:] in variables:
                stack.append(variables[target[1:]])
            else:
                raise ScriptError(f"push of an unknown variable {target}")
        elif head == "end_group":
            ended = True
        elif head in _NODE_CLASSES:
            if len(words) != 2 or words[1].kind != "braced":
                raise ScriptError(f"{head} takes one braced body")
            knobs, values = check_node_body(words[1].text)
            count = int(values["inputs"].text) if "inputs" in values else 1
            if count > len(stack):
                if head not in ("Group", "Gizmo"):  # a gizmo file has nothing to connect
                    raise ScriptError(f"{head} takes {count} inputs from a stack of {len(stack)}")
                count = len(stack)
            inputs = [stack.pop() for _ in range(count)]
            name = values["name"].text if "name" in values else head
            stack.append(name)
            if head in ("Group", "Gizmo"):
                group = (head, knobs, values, inputs)
                stack = []  # the Group's inner nodes start a stack of their own
            else:
                children.append((head, values, inputs))
        else:
            raise ScriptError(f"unknown command {head!r}")
    if group is None or not ended:
        raise ScriptError("no Group/Gizmo, or no end_group")
    return {"group": group, "children": children}


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knobs():
    return knob_list(json.loads(json.dumps(config_schema())))


@pytest.mark.parametrize("gizmo", [False, True])
def test_group_script_is_valid_and_has_every_knob(knobs, gizmo: bool) -> None:
    parsed = check_script(group_script(knobs, gizmo=gizmo))
    kind, user_knobs, values, inputs = parsed["group"]
    assert kind == ("Gizmo" if gizmo else "Group") and values["inputs"].text == "2"
    # The selected node feeds the plate input (0); pasted, the mask input stays empty.
    assert inputs == (["(selection)"] if gizmo else ["(selection)", "(nothing)"])
    assert [k.name for k in user_knobs] == [k.name for k in knobs]
    for spec, knob in zip(knobs, user_knobs, strict=True):
        assert knob.type_id == KNOB_TYPE_IDS[spec.kind], spec.name
        if spec.kind not in ("end_group",):
            assert knob.options["l"].text == spec.label
        if spec.tooltip:
            assert knob.options["t"].text == spec.tooltip  # quoting round-trips
        if spec.kind == "enum":
            items = [w.text for c in commands(knob.options["M"].text) for w in c]
            assert items == list(spec.choices) and values[spec.name].text == spec.default
        if spec.kind == "button":
            assert knob.options["T"].text == spec.script and "vfxmatte_nuke.process" in spec.script
        if spec.kind in ("string", "file"):
            assert values[spec.name].text == spec.default
        if spec.hidden:
            assert "+INVISIBLE" in knob.flags
    assert [c[0] for c in parsed["children"]] == [c.node_class for c in CHILDREN]
    wiring = {values["name"].text: inputs for _, values, inputs in parsed["children"]}
    assert wiring == {c.name: list(c.inputs) for c in CHILDREN}
    assert wiring["show"] == ["plate", "result"] and wiring["Output1"] == ["show"]
    read = {c[0]: c[1] for c in parsed["children"]}["Read"]
    assert read["file"].text == "[value parent.result_file]" and read["raw"].text == "true"
    assert read["first"].kind == "braced" and read["first"].text == "{parent.result_first}"


def test_nasty_text_round_trips(knobs) -> None:
    nasty = 'a "quoted" [cmd] $var {brace} } back\\slash\nnew line\ttab'
    spec = KnobSpec("string", "nasty", label="l {x}", tooltip=nasty, default=nasty)
    parsed = check_script(group_script([*knobs[:3], spec]))
    _, user_knobs, values, _ = parsed["group"]
    assert user_knobs[-1].options["t"].text == nasty and values["nasty"].text == nasty
    assert user_knobs[-1].options["l"].text == "l {x}"
    assert tcl_word("flow") == "flow" and tcl_word("") == '""' and tcl_word("a b") == '"a b"'


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Group {\n addUserKnob {4 x M {a b}}\n x c\n}\nend_group\n", "not one of"),
        ("Group {\n addUserKnob {9 x}\n}\nend_group\n", "unknown knob type"),
        ("Group {\n addUserKnob {6 x}\n x maybe\n}\nend_group\n", "not a boolean"),
        ('Group {\n addUserKnob {1 x t "a [b]"}\n}\nend_group\n', "command substitution"),
        ('Group {\n addUserKnob {1 x l "oops}\n}\nend_group\n', "unterminated"),
        ("Group {\n addUserKnob {1 x}\n}\n}\nend_group\n", "unbalanced"),
        ("Group {\n addUserKnob {20 g n 1}\n}\nend_group\n", "left open"),
        ("Group {\n addUserKnob {1 x Q 3}\n}\nend_group\n", "unknown addUserKnob word"),
        ("Group {\n y 3\n}\nend_group\n", "undeclared knob"),
        ("push $nowhere\nGroup {\n}\nend_group\n", "unknown variable"),
        ("Group {\n}\n", "no end_group"),
    ],
)
def test_the_parser_catches_bad_scripts(text: str, error: str) -> None:
    with pytest.raises(ScriptError, match=re.escape(error)):
        check_script(text)


def test_knob_lines_use_nukes_layout(knobs) -> None:
    by_name = {k.name: k for k in knobs}
    assert knob_line(by_name["propagate_backend"]).startswith(
        "addUserKnob {4 propagate_backend l backend t "
    )
    assert knob_line(by_name["propagate_backend"]).endswith(
        "+STARTLINE M {flow sam2 snapcut static given}}"
    )
    assert knob_line(by_name["grp_propagate_flow"]).endswith(" n 1}")
    assert (
        knob_line(by_name["grp_propagate_flow_end"])
        == "addUserKnob {20 grp_propagate_flow_end n -1}"
    )
    assert " R 64 8192}" in knob_line(by_name["propagate_flow_work_long_side"])
    assert "-STARTLINE" in knob_line(by_name["farm"])


def test_write_gizmo(tmp_path, knobs) -> None:
    path = tmp_path / "VfxMatte.gizmo"
    write_gizmo(str(path), knobs)
    parsed = check_script(path.read_text(encoding="utf-8"))
    assert parsed["group"][0] == "Gizmo" and parsed["group"][2]["name"].text == "VfxMatte"
