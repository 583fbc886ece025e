"""The email template catalog and the checks of override sources, without the store: every shipped template has a
sample data set it renders with, and sources that would not render are refused naming the part, line and variable."""

from __future__ import annotations

import json

import pytest

from include.officeflow import email_templates as catalog
from include.officeflow.email_rendering import TemplateProblem, check_sources, render_sources
from include.officeflow.email_templates import EMAIL_TEMPLATES_DIR, Sources

WELCOME = catalog.shipped("welcome")


def welcome(**parts: str) -> Sources:
    return Sources(**{"subject": WELCOME.sources.subject, "html": WELCOME.sources.html, "text": WELCOME.sources.text,
                      **parts})


def refused(sources: Sources, variables: dict | None = None) -> TemplateProblem:
    with pytest.raises(TemplateProblem) as info:
        check_sources("welcome", sources, variables)
    return info.value


@pytest.mark.parametrize("name", catalog.shipped_names())
def test_every_shipped_template_has_a_description_and_renders_with_its_sample(name):
    template = catalog.shipped(name)
    data = json.loads((EMAIL_TEMPLATES_DIR / f"{name}.sample.json").read_text())
    assert set(data) == {"description", "variables"} and template.description
    rendered = check_sources(name, template.sources)
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and rendered.text.strip()
    # The sample holds every variable the template uses, except the layout's optional ones (used with a default).
    assert set(template.variables) - set(template.sample) <= {"brand_color"}


def test_the_catalog_is_the_templates_with_a_subject_file():
    assert "welcome" in catalog.shipped_names()
    assert "layout" not in catalog.shipped_names()
    for name in ("layout", "brands", "../welcome", "welcome.html.j2", ""):
        with pytest.raises(catalog.UnknownTemplate):
            catalog.shipped(name)


def test_variables_include_the_layouts():
    assert {"first_name", "start_date", "company_name", "brand_color"} <= set(WELCOME.variables)
    assert "brand" not in WELCOME.variables and "brand" in WELCOME.allowed_variables
    assert "manager_email" in WELCOME.allowed_variables  # from the sample: what the workflow passes


def test_overrides_render_autoescaped_html_and_plain_text():
    sources = welcome(html="<p>{{ first_name }}</p>", text="{{ first_name }}")
    rendered = render_sources("welcome", sources, {"first_name": "<b>Ada</b>"}, "acme")
    assert rendered.html == "<p>&lt;b&gt;Ada&lt;/b&gt;</p>"
    assert rendered.text == "<b>Ada</b>\n"
    assert rendered.subject == "Welcome to the team, <b>Ada</b>!"


def test_an_override_may_extend_the_shipped_layout_and_sees_the_brand():
    sources = welcome(html='{% extends "layout.html.j2" %}{% block body %}<p>{{ brand.sign_off }}</p>{% endblock %}')
    rendered = check_sources("welcome", sources, organization="acme")
    assert "<p>The Acme People Team</p>" in rendered.html and "Acme Corporation" in rendered.html


def test_an_unknown_variable_names_the_part_line_and_variable():
    problem = refused(welcome(text="Hello\n\n{% if department %}\n{{ departmnet }}\n{% endif %}"))
    assert (problem.code, problem.part, problem.line, problem.variable) == ("unknown_variable", "text", 4,
                                                                            "departmnet")
    assert str(problem).startswith("text line 4: 'departmnet' is not a variable of template 'welcome'")


def test_variables_set_in_the_template_and_loop_variables_are_known():
    sources = welcome(html="{% set who = first_name %}{% for i in range(2) %}{{ loop.index }}{{ who }}{% endfor %}")
    assert check_sources("welcome", sources).html == "1Ada2Ada"


def test_a_syntax_error_names_its_line():
    problem = refused(welcome(subject="Welcome {{ first_name "))
    assert (problem.code, problem.part, problem.line) == ("template_syntax_error", "subject", 1)
    problem = refused(welcome(html="<p>\n</p>\n{% for x in bring %}\n"))
    assert (problem.code, problem.part) == ("template_syntax_error", "html")
    assert problem.line is not None and problem.line >= 3


def test_a_variable_missing_from_the_data_names_its_line():
    problem = refused(welcome(html="<p>\n{{ first_name }}\n{{ brand_color }}</p>"))
    assert (problem.code, problem.part, problem.line, problem.variable) == ("undefined_variable", "html", 3,
                                                                            "brand_color")
    problem = refused(welcome(), variables={"department": "Sales"})  # given data replaces the sample here
    assert (problem.code, problem.variable) == ("undefined_variable", "first_name")


def test_the_sandbox_refuses_python_internals():
    problem = refused(welcome(html="<p>\n{{ first_name.__class__.__base__.__subclasses__() }}</p>"))
    assert (problem.code, problem.part, problem.line) == ("unsafe_template", "html", 2)
    problem = refused(welcome(html="{{ first_name.format.__globals__ }}"))
    assert problem.code == "unsafe_template"


def test_the_subject_must_be_one_line():
    assert refused(welcome(subject="Hi\n{{ first_name }}")).code == "invalid_subject"
    assert refused(welcome(subject="{{ '' }}")).code == "invalid_subject"
