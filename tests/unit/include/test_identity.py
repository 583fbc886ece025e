"""The provider-neutral identity model: input validation, group mapping."""

from __future__ import annotations

import pytest

from include.officeflow.errors import InvalidInput
from include.officeflow.identity import DEFAULT_GROUPS_FILE, GroupMappingError, Person, load_group_mapping

HIRE = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada.Lovelace@officeflow.test",
        "department": "Engineering", "job_title": "Software Engineer"}


def test_person_accepts_officeflow_hire_keys_and_lowercases_the_login():
    person = Person.from_mapping(HIRE)
    assert (person.given_name, person.family_name, person.email) == ("Ada", "Lovelace", "ada.lovelace@officeflow.test")
    assert person.display_name == "Ada Lovelace" and person.local_part == "ada.lovelace"
    assert person.job_title == "Software Engineer"


def test_person_lists_every_problem_at_once():
    with pytest.raises(InvalidInput) as info:
        Person.from_mapping({"first_name": "  ", "email": "not-an-email", "personal_email": "x@"})
    message = str(info.value)
    for expected in ("given name", "family name", "'not-an-email' is not a valid address", "personal_email"):
        assert expected in message


@pytest.mark.parametrize("bad", ["Ada <script>", "A" * 61, "Ada\nBob"])
def test_person_refuses_names_providers_refuse(bad):
    with pytest.raises(InvalidInput, match="given name"):
        Person.from_mapping({**HIRE, "first_name": bad})


def test_person_must_be_a_mapping():
    with pytest.raises(InvalidInput, match="mapping"):
        Person.from_mapping("ada@officeflow.test")  # type: ignore[arg-type]


def test_bundled_group_mapping_is_valid_and_maps_department_and_role_case_insensitively():
    mapping = load_group_mapping(DEFAULT_GROUPS_FILE)
    assert mapping.google.for_person("engineering", "software engineer") == [
        "everyone@officeflow.test", "engineering@officeflow.test", "developers@officeflow.test"]
    assert mapping.okta.for_person(None, None) == ["Everyone at OfficeFlow"]
    assert "Managers" in mapping.microsoft.managed()
    with pytest.raises(InvalidInput, match="unknown identity provider"):
        mapping.of("ldap")


@pytest.mark.parametrize("content, problem", [
    ("google:\n  all: ['']\n", "google.all"),
    ("google:\n  everyone: [a@b.c]\n", "google.everyone"),
    ("ldap:\n  all: [x]\n", "ldap"),
    ("google:\n  departments:\n    Engineering: [1]\n", "google.departments"),
    ("google: [unclosed\n", "cannot read"),
])
def test_invalid_group_mapping_is_refused_at_load_naming_the_field(tmp_path, content, problem):
    path = tmp_path / "groups.yaml"
    path.write_text(content)
    with pytest.raises(GroupMappingError, match=r"groups\.yaml") as info:
        load_group_mapping(path)
    assert problem in str(info.value)


def test_missing_group_mapping_file_is_a_clear_error(tmp_path):
    with pytest.raises(GroupMappingError, match="cannot read"):
        load_group_mapping(tmp_path / "absent.yaml")


def test_group_mapping_follows_file_changes(tmp_path):
    path = tmp_path / "groups.yaml"
    path.write_text("okta:\n  all: [One]\n")
    assert load_group_mapping(path).okta.all == ["One"]
    import os

    path.write_text("okta:\n  all: [Two]\n")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert load_group_mapping(path).okta.all == ["Two"]
