from __future__ import annotations

import pytest

from bot.intake.forms import (
    BUILTIN_LABEL,
    FieldKind,
    FormError,
    builtin_forms,
    parse_issue_form,
    parse_issue_forms,
)
from tests.support.forms import BUG_FORM, DASHBOARD_FORM, REPO_FORMS


def test_dashboard_form_keeps_every_field_kind_with_required_flags():
    form = parse_issue_form("dashboard", DASHBOARD_FORM)
    assert form.name == "Dashboard request"
    assert form.title_prefix == "[Dashboard]: "
    assert form.labels == ["dashboard", "triage"]
    assert form.assignees == ["analytics-support"]
    kinds = [(f.id, f.kind, f.required) for f in form.fields]
    assert kinds == [
        ("markdown-1", FieldKind.MARKDOWN, False),
        ("problem", FieldKind.TEXTAREA, True),
        ("end_state", FieldKind.TEXTAREA, True),
        ("existing", FieldKind.INPUT, False),
        ("audience", FieldKind.DROPDOWN, False),
        ("tool", FieldKind.DROPDOWN, True),
        ("sql", FieldKind.TEXTAREA, False),
        ("terms", FieldKind.CHECKBOXES, True),
    ]
    audience, tool = form.field("audience"), form.field("tool")
    assert audience.multiple and audience.options == [
        "Leadership",
        "Sales",
        "Product",
        "Engineering",
    ]
    assert not tool.multiple and tool.default == 0
    assert form.field("sql").render == "sql"
    assert form.field("existing").placeholder.startswith("https://looker")
    terms = form.field("terms")
    assert [(c.label, c.required) for c in terms.checkboxes] == [
        ("I checked that no existing dashboard answers this", True),
        ("I can review a draft within a week", False),
    ]


def test_comma_separated_labels_and_fields_without_id_get_stable_ids():
    form = parse_issue_form("data-bug", BUG_FORM)
    assert form.labels == ["bug", "data-quality"]
    assert [f.id for f in form.fields] == ["where", "what-is-wrong"]


def test_repo_folder_skips_config_and_sorts_forms_by_name():
    forms, problems = parse_issue_forms({**REPO_FORMS, "old-template.md": "---\nname: x\n---"})
    assert [f.key for f in forms] == ["dashboard", "data-bug"]
    assert problems == []


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("name: x\nbody: [", "not valid YAML"),
        ("description: no name\nbody:\n  - type: input\n    attributes: {label: A}", "`name`"),
        ("name: x\n", "missing `body`"),
        ("name: x\nbody:\n  - type: slider\n    attributes: {label: A}", "unknown type 'slider'"),
        ("name: x\nbody:\n  - type: input\n    attributes: {}", "needs `attributes.label`"),
        ("name: x\nbody:\n  - type: dropdown\n    attributes: {label: A}", "options"),
        (
            "name: x\nbody:\n  - type: dropdown\n"
            "    attributes: {label: A, options: [a], default: 3}",
            "out-of-range",
        ),
        ("name: x\nbody:\n  - type: markdown\n    attributes: {value: hi}", "no questions"),
    ],
)
def test_invalid_forms_are_reported_with_file_and_reason(text, complaint):
    with pytest.raises(FormError) as raised:
        parse_issue_form("broken", text)
    assert str(raised.value).startswith("broken:")
    assert complaint in str(raised.value)


def test_a_broken_form_does_not_hide_the_good_ones():
    forms, problems = parse_issue_forms({"good.yml": BUG_FORM, "bad.yml": "name: [unclosed"})
    assert [f.key for f in forms] == ["good"]
    assert len(problems) == 1 and problems[0].startswith("bad:")


def test_builtin_forms_cover_the_team_request_kinds_and_ask_the_domain_questions():
    forms = builtin_forms()
    assert {f.labels[1] for f in forms} == {"dashboard", "analysis", "metric", "bug"}
    for form in forms:
        assert form.labels[0] == BUILTIN_LABEL
        assert [(f.id, f.required) for f in form.questions] == [
            ("problem", True),
            ("end_state", True),
            ("why", True),
        ]


def test_a_form_longer_than_a_modal_can_show_is_cut_to_what_is_asked():
    from bot.intake.forms import MAX_FIELDS

    body = "".join(
        f"  - type: input\n    id: f{i}\n    attributes: {{label: Field {i}}}\n" for i in range(100)
    )
    form = parse_issue_form("long", "name: Long\nbody:\n" + body)
    assert [f.id for f in form.fields] == [f"f{i}" for i in range(MAX_FIELDS)]
