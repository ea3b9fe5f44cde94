"""GitHub issue forms (`.github/ISSUE_TEMPLATE/*.yml`) as pydantic models, and the built-in
request types used when the analytics repo has none.

The Slack modal is built from the chosen form and the GitHub issue body is laid out the way
GitHub lays out a submitted form (`### Label` then the answer, `_No response_` when empty),
so Slack and GitHub ask the same questions and produce the same issues.

Syntax reference: GitHub's "Syntax for issue forms" and "Syntax for GitHub's form schema".
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum

import yaml
from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)

# A Slack modal holds 100 blocks; the request modal needs about 10 of its own.
MAX_FIELDS = 80

# The repo's ISSUE_TEMPLATE folder also holds config.yml (chooser settings) and Markdown
# templates; only YAML files with a `body` are forms.
NOT_FORMS = {"config.yml", "config.yaml"}


class FieldKind(StrEnum):
    MARKDOWN = "markdown"
    INPUT = "input"
    TEXTAREA = "textarea"
    DROPDOWN = "dropdown"
    CHECKBOXES = "checkboxes"


class CheckboxOption(BaseModel):
    label: str
    required: bool = False


class FormField(BaseModel):
    """One element of a form's `body`."""

    id: str
    kind: FieldKind
    label: str = ""
    description: str = ""
    placeholder: str = ""
    value: str = ""  # default text (input/textarea) or the text of a markdown element
    required: bool = False
    render: str | None = None  # textarea: answer goes in a code block of this language
    options: list[str] = Field(default_factory=list)  # dropdown
    multiple: bool = False  # dropdown
    default: int | None = None  # dropdown: index of the preselected option
    checkboxes: list[CheckboxOption] = Field(default_factory=list)

    @property
    def asks(self) -> bool:
        """Markdown elements only show text; every other element asks for an answer."""
        return self.kind is not FieldKind.MARKDOWN


class IssueForm(BaseModel):
    key: str  # file name without extension: stable id in Slack state
    name: str
    description: str = ""
    title_prefix: str = ""  # the form's `title:`, e.g. "[Dashboard]: "
    labels: list[str] = Field(default_factory=list)
    assignees: list[str] = Field(default_factory=list)
    fields: list[FormField] = Field(default_factory=list)
    builtin: bool = False

    def field(self, field_id: str) -> FormField | None:
        return next((f for f in self.fields if f.id == field_id), None)

    @property
    def questions(self) -> list[FormField]:
        return [f for f in self.fields if f.asks]


class FormError(ValueError):
    """A form file that is not a valid issue form; the message says where."""


def _as_list(value: object) -> list[str]:
    """GitHub accepts `labels` (and `assignees`) as a YAML list or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    raise FormError(f"expected a list or comma-separated string, got {type(value).__name__}")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "field"


def parse_issue_form(key: str, text: str) -> IssueForm:
    """Parse one issue-form YAML file. Raises FormError for anything GitHub would reject."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormError(f"{key}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise FormError(f"{key}: expected a mapping at the top level")
    name = str(data.get("name") or "").strip()
    if not name:
        raise FormError(f"{key}: missing `name`")
    body = data.get("body")
    if not isinstance(body, list) or not body:
        raise FormError(f"{key}: missing `body` (a list of form elements)")
    try:
        labels = _as_list(data.get("labels"))
        assignees = _as_list(data.get("assignees"))
    except FormError as exc:
        raise FormError(f"{key}: {exc}") from None

    if len(body) > MAX_FIELDS:
        # Only what the modal can show is asked, validated and rendered, consistently.
        logger.warning(
            "%s: %s form elements; only the first %s are used", key, len(body), MAX_FIELDS
        )
        body = body[:MAX_FIELDS]
    fields: list[FormField] = []
    seen: set[str] = set()
    for index, element in enumerate(body, start=1):
        field = _parse_element(key, index, element)
        if field.id in seen:  # GitHub requires unique ids; labels can repeat, so make them so
            field.id = f"{field.id}-{index}"
        seen.add(field.id)
        fields.append(field)
    if not any(f.asks for f in fields):
        raise FormError(f"{key}: the form has no questions, only markdown")
    return IssueForm(
        key=key,
        name=name,
        description=str(data.get("description") or "").strip(),
        title_prefix=str(data.get("title") or ""),
        labels=labels,
        assignees=assignees,
        fields=fields,
    )


def _parse_element(key: str, index: int, element: object) -> FormField:
    where = f"{key}: body item {index}"
    if not isinstance(element, dict):
        raise FormError(f"{where}: expected a mapping")
    try:
        kind = FieldKind(str(element.get("type")))
    except ValueError:
        raise FormError(f"{where}: unknown type {element.get('type')!r}") from None
    attributes = element.get("attributes") or {}
    validations = element.get("validations") or {}
    if not isinstance(attributes, dict) or not isinstance(validations, dict):
        raise FormError(f"{where}: `attributes` and `validations` must be mappings")
    label = str(attributes.get("label") or "").strip()
    if kind is FieldKind.MARKDOWN:
        return FormField(
            id=str(element.get("id") or f"markdown-{index}"),
            kind=kind,
            value=str(attributes.get("value") or ""),
        )
    if not label:
        raise FormError(f"{where}: {kind} needs `attributes.label`")
    field = FormField(
        id=str(element.get("id") or slug(label)),
        kind=kind,
        label=label,
        description=str(attributes.get("description") or "").strip(),
        placeholder=str(attributes.get("placeholder") or ""),
        value=str(attributes.get("value") or ""),
        required=bool(validations.get("required", False)),
        render=str(attributes["render"]) if attributes.get("render") else None,
    )
    if kind is FieldKind.DROPDOWN:
        options = attributes.get("options")
        if not isinstance(options, list) or not options:
            raise FormError(f"{where}: dropdown {label!r} needs `attributes.options`")
        field.options = [str(o) for o in options]
        field.multiple = bool(attributes.get("multiple", False))
        default = attributes.get("default")
        if default is not None:
            if not isinstance(default, int) or not 0 <= default < len(field.options):
                raise FormError(f"{where}: dropdown {label!r} has an out-of-range `default`")
            field.default = default
    elif kind is FieldKind.CHECKBOXES:
        options = attributes.get("options")
        if not isinstance(options, list) or not options:
            raise FormError(f"{where}: checkboxes {label!r} need `attributes.options`")
        for option in options:
            if not isinstance(option, dict) or not option.get("label"):
                raise FormError(f"{where}: each checkbox option needs a `label`")
            field.checkboxes.append(
                CheckboxOption(label=str(option["label"]), required=bool(option.get("required")))
            )
        field.required = field.required or any(c.required for c in field.checkboxes)
    return field


def parse_issue_forms(files: dict[str, str]) -> tuple[list[IssueForm], list[str]]:
    """Parse every form among `files` (file name -> text). Returns the forms, sorted by
    name, and one problem line per file that was skipped (bad files never hide good ones)."""
    forms: list[IssueForm] = []
    problems: list[str] = []
    for filename, text in sorted(files.items()):
        if filename in NOT_FORMS or not filename.endswith((".yml", ".yaml")):
            continue
        key = filename.rsplit(".", 1)[0]
        try:
            forms.append(parse_issue_form(key, text))
        except FormError as exc:
            logger.warning("skipping issue form: %s", exc)
            problems.append(str(exc))
    forms.sort(key=lambda f: f.name.lower())
    return forms, problems


# --- the built-in request types ---------------------------------------------------------

_BUILTIN_FIELDS = [
    FormField(
        id="problem",
        kind=FieldKind.TEXTAREA,
        label="Problem or question",
        description="What do you want to know or fix?",
        required=True,
    ),
    FormField(
        id="end_state",
        kind=FieldKind.TEXTAREA,
        label="End state",
        description="What decision does it inform, and what does the result look like "
        "(a sketch of the chart)?",
        required=True,
    ),
    FormField(
        id="why",
        kind=FieldKind.TEXTAREA,
        label="Why",
        description="What will it be used for, and which company or team goal does it support?",
        required=True,
    ),
]

# The kinds of request the team takes (DOMAIN.md), each with its own label.
_BUILTIN_TYPES = [
    ("dashboard", "Dashboard (new or change)", "dashboard"),
    ("analysis", "Ad-hoc analysis", "analysis"),
    ("metric", "New business metric", "metric"),
    ("bug", "Bug in a pipeline, transformation or report", "bug"),
]

BUILTIN_LABEL = "data-request"


def builtin_forms() -> list[IssueForm]:
    return [
        IssueForm(
            key=f"builtin-{key}",
            name=name,
            labels=[BUILTIN_LABEL, label],
            fields=[f.model_copy() for f in _BUILTIN_FIELDS],
            builtin=True,
        )
        for key, name, label in _BUILTIN_TYPES
    ]


def find_form(forms: list[IssueForm], key: str | None) -> IssueForm | None:
    return next((f for f in forms if f.key == key), None)
