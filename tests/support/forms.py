"""Real-shaped issue forms of an analytics repo (.github/ISSUE_TEMPLATE/*), shared by the
intake tests and the demo. Written the way teams write them, following GitHub's syntax."""

DASHBOARD_FORM = """\
name: Dashboard request
description: A new dashboard, or a change to an existing one.
title: "[Dashboard]: "
labels: ["dashboard", "triage"]
assignees:
  - analytics-support
body:
  - type: markdown
    attributes:
      value: |
        Thanks for asking! Dashboards live in Looker. **Check the catalog first.**
  - type: textarea
    id: problem
    attributes:
      label: What question should the dashboard answer?
      description: The problem or question, in a sentence or two.
      placeholder: How many instances upgraded to 5.x last month?
    validations:
      required: true
  - type: textarea
    id: end_state
    attributes:
      label: End state
      description: What decision does it inform? Sketch the chart.
    validations:
      required: true
  - type: input
    id: existing
    attributes:
      label: Existing dashboard (if a change)
      placeholder: https://looker.example.com/dashboards/12
    validations:
      required: false
  - type: dropdown
    id: audience
    attributes:
      label: Audience
      multiple: true
      options:
        - Leadership
        - Sales
        - Product
        - Engineering
  - type: dropdown
    id: tool
    attributes:
      label: Tool
      options:
        - Looker
        - Amplitude
        - Redash
      default: 0
    validations:
      required: true
  - type: textarea
    id: sql
    attributes:
      label: Query you started from
      render: sql
  - type: checkboxes
    id: terms
    attributes:
      label: Before you submit
      options:
        - label: I checked that no existing dashboard answers this
          required: true
        - label: I can review a draft within a week
"""

BUG_FORM = """\
name: Data bug
description: Something in a pipeline, transformation or report is wrong.
title: "[Bug]: "
labels: bug, data-quality
body:
  - type: input
    id: where
    attributes:
      label: Where do you see it?
    validations:
      required: true
  - type: textarea
    attributes:
      label: What is wrong
    validations:
      required: true
"""

CONFIG = """\
blank_issues_enabled: true
contact_links:
  - name: Ask in #analytics
    url: https://example.slack.com/archives/C0ANALYTICS
    about: Quick questions
"""

REPO_FORMS = {
    "dashboard.yml": DASHBOARD_FORM,
    "data-bug.yaml": BUG_FORM,
    "config.yml": CONFIG,
}
