"""The configuration file: every error path names the file, the line, the path inside it, what is wrong and
what is allowed; all problems are reported at once; the shipped file is valid."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from shared.config.file import (
    ConfigFileError,
    config_path,
    default_config,
    load_config,
    load_for_app,
    with_legacy_owners,
)
from shared.config.location_owners import parse_location_owners


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tillbridge.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(tmp_path, text), prefix="tb")
    return [str(p).replace(f"{tmp_path}/", "") for p in caught.value.config_problems]


def one(tmp_path: Path, text: str) -> str:
    found = problems_of(tmp_path, text)
    assert len(found) == 1, found
    return found[0]


def test_the_shipped_file_is_valid_and_changes_nothing() -> None:
    config = default_config("tb")
    assert config.version == 1 and config.rules == () and config.segments == ()
    assert all(config.flows.values())
    assert {f.owner for f in config.contact_mapping.fields} == {"square"}
    assert config.contact_mapping.field("emailaddress1") is not None


def test_the_prefix_names_custom_columns(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "version: 1\n"), prefix="contoso")
    assert config.contact_mapping.field("contoso_squarereferenceid") is not None
    assert config.mapping("transaction").table == "contoso_transaction"


def test_a_short_file_keeps_the_shipped_mappings_it_leaves_out(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "version: 1\nmappings:\n  contact:\n    firstname: {from: nickname}\n"), prefix="tb"
    )
    assert [f.column for f in config.contact_mapping.fields] == ["firstname"]
    assert len(config.mapping("payment").fields) == len(default_config("tb").mapping("payment").fields)


def test_unknown_top_level_key_names_line_path_and_what_is_allowed(tmp_path: Path) -> None:
    text = one(tmp_path, "version: 1\nrulez: []\n")
    assert text.startswith("tillbridge.yaml:2: rulez: unknown key (allowed: version, flows, mappings, locations")


def test_version_is_required_and_checked(tmp_path: Path) -> None:
    assert "(top level): missing the key 'version'" in one(tmp_path, "flows: {}\n")
    assert "version: 2 is not a configuration version (allowed: 1)" in one(tmp_path, "version: 2\n")


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    text = one(tmp_path, "version: 1\nflows: {sales: true\n")
    assert text.startswith("tillbridge.yaml:") and "not valid YAML" in text


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    assert "the file is empty" in one(tmp_path, "")
    with pytest.raises(ConfigFileError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert "does not exist" in str(caught.value)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = one(tmp_path, "version: 1\nflows:\n  sales: true\n  sales: false\n")
    assert "tillbridge.yaml:4: flows.sales: appears twice" in text


def test_flows_must_be_known_and_boolean(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "version: 1\nflows:\n  sale: true\n  refunds: maybe\n")
    assert any("flows.sale: unknown key (allowed: customers, sales, refunds" in p for p in found)
    assert any("flows.refunds: must be true or false, found a text (allowed: true, false)" in p for p in found)


def test_a_disabled_flow_is_off(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "version: 1\nflows: {refunds: false}\n"))
    assert not config.flow_enabled("refunds") and config.flow_enabled("sales")


def test_mapping_to_an_undeclared_column_is_an_error(tmp_path: Path) -> None:
    text = one(tmp_path, "version: 1\nmappings:\n  contact:\n    tb_shoesize: {from: note}\n")
    assert "tillbridge.yaml:4: mappings.contact.tb_shoesize: tb_shoesize is not a column of contact" in text
    assert "firstname" in text  # the allowed columns are listed


def test_mapping_errors_each_named(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        """\
        version: 1
        mappings:
          contact:
            firstname: {from: shoe_size}
            lastname: {from: family_name, transforms: [trim, shout]}
            nickname: {from: nickname, owner: nobody}
            jobtitle: {transforms: [constant]}
            description: {}
            telephone1: {from: phone_number, colour: red}
            birthdate: {from: birthday, transforms: [truncate]}
          sales: {}
          payment:
            tb_status: {from: status, owner: crm}
        """,
    )
    joined = "\n".join(found)
    for expected in (
        "mappings.contact.firstname.from: 'shoe_size' is not a field contact mappings can read",
        "mappings.contact.lastname.transforms[1]: unknown transform 'shout' (allowed: trim, lower, upper, e164",
        "mappings.contact.nickname.owner: 'nobody' is not an owner (allowed: square, crm, both, crm_if_empty)",
        "mappings.contact.jobtitle.transforms[0]: constant needs a value (allowed: {constant: <value>})",
        "mappings.contact.description: missing the key 'from'",
        "mappings.contact.telephone1.colour: unknown key (allowed: from, transforms, owner, only_with)",
        "mappings.contact.birthdate.transforms: truncate needs a text column; birthdate is date",
        "mappings.sales: unknown key (allowed: contact, transaction, sale",
        "mappings.payment.tb_status.owner: unknown key (allowed: from, transforms, only_with)",
    ):
        assert expected in joined, expected
    assert len(found) == 10  # + jobtitle: missing the key "from" (its constant has no value)


def test_field_owner_slot_for_two_way_sync(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
            version: 1
            mappings:
              contact:
                mobilephone: {from: phone_number, transforms: [trim, e164], owner: crm}
                emailaddress1: {from: email_address, transforms: [trim, email], owner: both}
                jobtitle: {transforms: [{constant: Customer}], owner: crm_if_empty}
                firstname: {from: given_name}
            """,
        )
    )
    owners = {f.column: f.owner for f in config.contact_mapping.fields}
    assert owners == {"mobilephone": "crm", "emailaddress1": "both", "jobtitle": "crm_if_empty", "firstname": "square"}


def test_locations_section(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
            version: 1
            locations:
              default_owner: teams/11111111-1111-1111-1111-111111111111
              stores:
                L1: {owner: systemusers/22222222-2222-2222-2222-222222222222, territory: West}
            """,
        )
    )
    assignment, mapped = config.locations.for_location("L1")
    assert mapped and assignment.owner == "/systemusers(22222222-2222-2222-2222-222222222222)"
    assert config.locations.for_location("L9")[0].owner == "/teams(11111111-1111-1111-1111-111111111111)"


def test_location_errors(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        """\
        version: 1
        locations:
          default_owner: bob
          stores:
            L1: {owner: teams/xyz, region: West}
            L2: just a name
        """,
    )
    joined = "\n".join(found)
    assert "locations.default_owner: 'bob' is not an owner (allowed: systemusers/<guid> or teams/<guid>)" in joined
    assert "locations.stores.L1.owner: 'teams/xyz' is not an owner" in joined
    assert "locations.stores.L1.region: unknown key (allowed: owner, business_unit, territory)" in joined
    assert "tillbridge.yaml:6: locations.stores.L2: must be a mapping" in joined


def test_old_owner_settings_still_work_and_both_is_an_error(tmp_path: Path) -> None:
    legacy, _ = parse_location_owners(
        '{"default_owner": "teams/11111111-1111-1111-1111-111111111111"}', "LOCATION_OWNERS"
    )
    config = with_legacy_owners(default_config("tb"), legacy)
    assert config.locations.default_owner == "/teams(11111111-1111-1111-1111-111111111111)"
    own = load_config(
        write(tmp_path, "version: 1\nlocations: {default_owner: teams/33333333-3333-3333-3333-333333333333}\n")
    )
    with pytest.raises(ConfigFileError) as caught:
        with_legacy_owners(own, legacy)
    assert "locations: store owners are set both here and in LOCATION_OWNERS" in str(caught.value)


def test_rule_errors_each_named(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        """\
        version: 1
        rules:
          - id: Big Spender
            on: purchase
            when: {order_total: {gte: lots}}
            action: {lead: {subject: "Hi {nobody}"}}
          - id: refund-task
            on: refund
            when:
              any:
                - refund_amount: {gte: 50, currency: usd}
                - first_purchase: true
            action: {task: {subject: ok, due_in_days: -1}}
            once_per: year
          - id: refund-task
            on: sale
            when: {all: [{order_total: {gte: 100}}], any: []}
            action: {lead: {subject: a}, task: {subject: b}}
          - id: no-action
            on: sale
            when: {visits: {within_days: 30}}
            action: {}
            enabled: sometimes
          - id: listy
            on: sale
            when: {category: [], weather: sunny}
            action: {opportunity: {description: x}}
        """,
    )
    joined = "\n".join(found)
    for expected in (
        "tillbridge.yaml:3: rules[0].id: 'Big Spender' is not an id (allowed: lower-case letters, digits and -",
        "rules[0].on: 'purchase' is not an event (allowed: sale, refund, inactivity)",
        "tillbridge.yaml:5: rules[0].when.order_total.gte: 'lots' is not a number (allowed: a number ≥ 0)",
        "rules[0].action.lead.subject: unknown placeholder {nobody} (allowed: rule_id, event, date",
        "rules[1].when.any[0].refund_amount.currency: 'usd' is not an ISO 4217 code",
        "rules[1].when.any[1].first_purchase: first_purchase cannot be used on refund",
        "rules[1].action.task.due_in_days: -1 is not a number of days (allowed: a whole number 0–365)",
        "rules[1].once_per: 'year' is not a period (allowed: customer, order, day, week, month)",
        "rules[2].id: the id 'refund-task' is used twice",
        "rules[2].when: all/any must be the only key of its mapping",
        "rules[2].action: holds more than one action (one rule, one action)",
        "rules[3].when.visits: needs a bound (allowed: gte, gt, lte, lt)",
        "rules[3].action: needs one action (allowed: lead, opportunity, task)",
        "rules[3].enabled: must be true or false",
        "rules[4].when.category: must be a name or a list of names, found a list",
        "rules[4].when.weather: unknown condition (allowed: all, any, first_purchase",
        "rules[4].action.opportunity: missing the key 'name'",
    ):
        assert expected in joined, expected


def test_rules_and_segments_parse(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
            version: 1
            rules:
              - id: guest-big-spender
                on: sale
                when: {all: [{guest_without_contact: true}, {order_total: {gte: 100}}]}
                action: {lead: {subject: "Guest spent {order_total} {currency}"}}
            segments:
              - id: regulars
                name: Regulars
                when: {visits: {gte: 3, within_days: 30}}
            """,
        )
    )
    (rule,) = config.rules
    assert (rule.id, rule.on, rule.action.kind, rule.once_per, rule.when.mode) == (
        "guest-big-spender",
        "sale",
        "lead",
        "customer",
        "all",
    )
    assert [c.name for c in rule.when.items] == ["guest_without_contact", "order_total"]
    (segment,) = config.segments
    assert segment.name == "Regulars" and segment.when.items[0].name == "visits"


def test_segment_errors(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        """\
        version: 1
        segments:
          - id: s1
            name: ""
            when: {order_total: {gte: 5}}
          - name: no id
            when: {home_store: L1}
        """,
    )
    joined = "\n".join(found)
    assert "segments[0].name: must be a text of 1–128 characters" in joined
    assert "segments[0].when.order_total: order_total cannot be used on segment" in joined
    assert "segments[1]: missing the key 'id'" in joined


def test_config_path_setting_and_app_loading(tmp_path: Path) -> None:
    bad = write(tmp_path, "version: 1\nflows: {sales: 3}\n")
    assert config_path({"TILLBRIDGE_CONFIG": str(bad)}) == bad
    assert config_path({}).name == "tillbridge.yaml"
    config, status = load_for_app(
        {"TILLBRIDGE_CONFIG": str(bad)}, prefix="tb", legacy_owners=default_config().locations
    )
    assert config is None and not status.valid
    assert tuple(p.replace(f"{tmp_path}/", "") for p in status.problems) == (
        "tillbridge.yaml:2: flows.sales: must be true or false, found a number (allowed: true, false)",
    )
    config, status = load_for_app({}, prefix="tb", legacy_owners=default_config().locations)
    assert config is not None and status.valid and status.file == "config/tillbridge.yaml"
