"""The module's .ui file against the widget code, without Qt: names, classes, bindings.

Slicer loads ``Resources/UI/LinGuinE.ui`` at run time, so a renamed or re-typed widget would
only fail inside Slicer. Here the XML is parsed and every ``ui.<name>.<member>`` the code uses
must exist with a class that has that member; every ``SlicerParameterName`` must be a field of
the parameter node class with a widget class that parameterNodeWrapper can bind to its type.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "LinGuinE"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "LinGuinE.ui"
WIDGET_CODE = MODULE_DIR / "LinGuinE.py"
GUI_CODE = [WIDGET_CODE, *sorted((MODULE_DIR / "LinGuinEGui").glob("*.py"))]  # all code that touches ui

_QWIDGET = {"visible", "enabled", "hide", "show", "setVisible", "setEnabled", "toolTip", "blockSignals"}
_BUTTON = _QWIDGET | {"clicked", "text", "checked", "toggled", "setText", "checkable"}
_VIEW = _QWIDGET | {"clicked", "currentIndex", "selectionModel", "doubleClicked"}
# Members the code may use, per widget class (Qt/CTK/Slicer API).
MEMBERS: dict[str, set[str]] = {
    "QPushButton": _BUTTON,
    "QCheckBox": _BUTTON | {"stateChanged"},
    "QRadioButton": _BUTTON,
    "QLabel": _QWIDGET | {"text", "setText", "wordWrap"},
    "QLineEdit": _QWIDGET | {"text", "setText", "textChanged", "placeholderText"},
    "QComboBox": _QWIDGET | {"currentText", "currentTextChanged", "setCurrentText", "addItem", "clear",
                             "currentIndex", "currentIndexChanged", "count"},
    "QDoubleSpinBox": _QWIDGET | {"value", "valueChanged", "setValue", "minimum", "maximum"},
    "QProgressBar": _QWIDGET | {"setRange", "setValue", "value", "maximum", "minimum"},
    "QFrame": _QWIDGET,
    "QTableWidget": _VIEW | {"setColumnCount", "setHorizontalHeaderLabels", "setRowCount", "rowCount",
                             "item", "setItem", "itemChanged", "currentRow", "resizeColumnsToContents"},
    "qMRMLTableView": _VIEW | {"setMRMLTableNode", "mrmlTableNode", "setMRMLScene"},
    "qMRMLNodeComboBox": _QWIDGET | {"currentNode", "setCurrentNode", "currentNodeChanged",
                                     "addAttribute", "setMRMLScene"},
    "qMRMLSegmentSelectorWidget": _QWIDGET | {"currentNode", "selectedSegmentIDs", "setCurrentNode",
                                              "currentSegmentID", "setMRMLScene"},
    "ctkPathLineEdit": _QWIDGET | {"currentPath", "setCurrentPath", "currentPathChanged", "addCurrentPathToHistory"},
    "ctkCollapsibleButton": _QWIDGET | {"collapsed", "text"},
}
# parameterNodeWrapper connectors: annotated type -> widget classes that can show it.
BINDABLE = {"bool": {"QCheckBox", "QPushButton"}, "float": {"QDoubleSpinBox", "ctkSliderWidget"},
            "str": {"QComboBox", "QLineEdit"}, "int": {"QSpinBox", "QSlider"}}


@pytest.fixture(scope="module")
def ui() -> ET.Element:
    return ET.parse(UI_FILE).getroot()


@pytest.fixture(scope="module")
def widgets(ui) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for element in ui.iter("widget"):
        name = element.get("name")
        assert name not in found, f"widget name '{name}' is used twice in the .ui"
        found[name] = element
    return found


def _code_uses() -> dict[str, set[str]]:
    """ui widget name -> members used on it (``None`` member: the widget itself)."""
    uses: dict[str, set[str]] = {}
    code = "\n".join(path.read_text() for path in GUI_CODE)
    for name, member in re.findall(r"\bui\.(\w+)(?:\.(\w+))?", code):
        uses.setdefault(name, set())
        if member:
            uses[name].add(member)
    return uses


def _property(element: ET.Element, name: str) -> ET.Element | None:
    for prop in element.findall("property"):
        if prop.get("name") == name:
            return prop
    return None


def test_root_widget_and_class(ui):
    assert ui.findtext("class") == "LinGuinE"
    root = ui.find("widget")
    assert root.get("class") == "qMRMLWidget" and root.get("name") == "LinGuinE"


def test_code_loads_this_ui_file():
    assert 'self.resourcePath("UI/LinGuinE.ui")' in WIDGET_CODE.read_text()


def test_every_widget_the_code_uses_exists_with_a_fitting_class(widgets):
    uses = _code_uses()
    assert len(uses) > 20  # the regex really found the code's widgets
    for name, members in sorted(uses.items()):
        assert name in widgets, f"code uses ui.{name}, which the .ui lacks"
        cls = widgets[name].get("class")
        assert cls in MEMBERS, f"ui.{name} is a {cls}: no member list for it in this test"
        unknown = members - MEMBERS[cls]
        assert not unknown, f"ui.{name} is a {cls}, which has no {sorted(unknown)}"


def _parameter_fields() -> dict[str, str]:
    """Parameter node fields -> annotation, as LinGuinE.py derives them from TrackingConfig."""
    import sys

    sys.path[:0] = [str(MODULE_DIR.parent), str(MODULE_DIR)]
    try:
        from LinGuinELogic.settings import parameter_fields
    finally:
        del sys.path[:2]
    fields = {"promptNode": "vtkMRMLMarkupsFiducialNode", "tableNode": "vtkMRMLTableNode"}
    for f in parameter_fields():
        base = f.kind.__name__
        fields[f.parameter] = (f"Annotated[{base}, Choice(...)]" if f.choices else
                               f"Annotated[{base}, WithinRange(...)]" if f.minimum is not None else base)
    return fields


def test_parameter_node_class_is_derived_from_the_config():
    code = WIDGET_CODE.read_text()
    assert "for field in parameter_fields()" in code and "parameterNodeWrapper(type(" in code
    assert "registration: str" not in code  # no option is declared a second time here


def test_parameter_bindings_match_the_parameter_node(widgets):
    fields = _parameter_fields()
    bound = {}
    for element in widgets.values():
        prop = _property(element, "SlicerParameterName")
        if prop is not None:
            bound[prop.findtext("string")] = element
    assert set(bound) <= set(fields), f"bound to unknown parameters: {set(bound) - set(fields)}"
    assert {"promptNode", "mode", "boost", "searchRadiusMm", "tableNode"} <= set(bound)
    for parameter, element in bound.items():
        annotation, cls = fields[parameter], element.get("class")
        if annotation.startswith("vtkMRML"):
            assert cls == "qMRMLNodeComboBox", parameter
            types = [s.text for s in _property(element, "nodeTypes").iter("string")]
            assert types == [annotation], (parameter, types)
        else:
            base = re.sub(r"Annotated\[(\w+),.*", r"\1", annotation)
            assert cls in BINDABLE[base], f"{parameter}: {annotation} cannot bind to a {cls}"
            if cls == "QComboBox" and base == "str":
                assert "Choice(" in annotation, f"{parameter}: a QComboBox needs a Choice annotation"


def test_backend_fields_exist_for_every_kind_and_option(widgets):
    """The panel shows, per backend kind, the fields a backend may need (names used by backend_panel.py)."""
    import sys

    sys.path[:0] = [str(MODULE_DIR.parent), str(MODULE_DIR)]
    try:
        from LinGuinELogic.settings import PANEL_OPTIONS
    finally:
        del sys.path[:2]
    panel = (MODULE_DIR / "LinGuinEGui" / "backend_panel.py").read_text()
    expected = {"file": "ctkPathLineEdit", "folder": "ctkPathLineEdit", "text": "QLineEdit", "secret": "QLineEdit"}
    for option, (kind_of_widget, _label) in PANEL_OPTIONS.items():
        match = re.search(rf'"{option}": \("(\w+)", "(\w+)"\)', panel)
        assert match, f"backend_panel.py has no widgets for {option}"
        for kind in ("registration", "segmentation"):
            field, label = widgets.get(kind + match[1]), widgets.get(kind + match[2])
            assert field is not None and label is not None, (kind, option)
            assert field.get("class") == expected[kind_of_widget], (kind, option)
            if kind_of_widget in ("file", "folder"):
                filters = _property(field, "filters").findtext("set")
                assert ("Files" if kind_of_widget == "file" else "Dirs") in filters, (kind, option)
            if kind_of_widget == "secret":
                assert _property(field, "echoMode").findtext("enum") == "QLineEdit::Password"
        assert widgets.get("registrationStatusLabel") is not None
    assert widgets["modelDirPathLineEdit"].get("class") == "ctkPathLineEdit"
    # Backend paths are application settings, never scene (parameter node) content.
    bound = {(_property(e, "SlicerParameterName").findtext("string")) for e in widgets.values()
             if _property(e, "SlicerParameterName") is not None}
    assert not bound & {"weights", "modelDir", "serverUrl", "apiKey", "registrationOptions",
                        "segmentationOptions"}


def test_mrml_widgets_receive_the_scene(ui, widgets):
    connected = {c.findtext("receiver") for c in ui.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    needing = {n for n, e in widgets.items() if e.get("class").startswith("qMRML") and n != "LinGuinE"}
    assert needing and needing <= connected, f"no scene for {needing - connected}"
    assert connected <= set(widgets)


def test_custom_widgets_are_declared(ui, widgets):
    declared = {c.findtext("class"): c.findtext("header") for c in ui.iter("customwidget")}
    for element in widgets.values():
        cls = element.get("class")
        if not cls.startswith("Q"):
            assert cls in declared, f"{cls} is not declared as a custom widget"
            assert declared[cls] == f"{cls}.h"


def test_form_layout_cells_are_unique(ui):
    for layout in ui.iter("layout"):
        if layout.get("class") not in ("QFormLayout", "QGridLayout"):
            continue
        cells = [(i.get("row"), i.get("column")) for i in layout.findall("item")]
        assert all(r is not None and c is not None for r, c in cells), layout.get("name")
        assert len(cells) == len(set(cells)), f"overlapping cells in {layout.get('name')}"


def test_cmake_ships_every_module_file():
    """slicerMacroBuildScriptedModule installs only what it lists: a new file must be listed."""
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text()
    listed = set(re.findall(r"^\s+(\S+\.(?:py|ui|png))\s*$", cmake, re.MULTILINE))
    listed = {entry.replace("${MODULE_NAME}", "LinGuinE") for entry in listed}
    present = {str(p.relative_to(MODULE_DIR)) for p in MODULE_DIR.rglob("*")
               if p.suffix in (".py", ".ui", ".png") and "Testing" not in p.parts and "__pycache__" not in p.parts}
    assert present == listed, f"not listed: {present - listed}; listed but absent: {listed - present}"
    root = (MODULE_DIR.parent / "CMakeLists.txt").read_text()
    assert re.search(r"^project\(LinGuinE\)", root, re.MULTILINE)
    for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert re.search(rf"^set\(EXTENSION_{key} ", root, re.MULTILINE), key
    assert re.search(r'^set\(EXTENSION_DEPENDS "PyTorch"\)', root, re.MULTILINE)
    # The icon and screenshot URLs point at files that exist in this repository.
    for url in re.findall(r"raw\.githubusercontent\.com/[^/]+/[^/]+/[^/]+/(\S+?)\"", root):
        assert (MODULE_DIR.parent / url).is_file(), url
