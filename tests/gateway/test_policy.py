"""The access decision against the builtin seed catalogue."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import pytest
from govshare.directory import Catalogue, Grant, ResourceState, load_builtin_catalogue
from govshare.gateway import (
    Decision,
    GovshareError,
    Principal,
    Reason,
    Role,
    authorize_department,
    decide,
)

TODAY = dt.date(2026, 11, 23)

LAND_REGISTRY = "11330100002482106W"  # grants on identity, marriage, real estate (2026-2028)
HOUSING = "113301000024821070"  # expired tax grant (2024-2025), identity grant
SUSPENDED = "113301000024821083"
PUBLIC_SECURITY = "11330100002482102G"  # provider of identity and criminal records
UNREGISTERED = "91110108551385082Q"  # a valid USCC that is not in the directory

LICENCE = "105001/00001"  # UNCONDITIONAL
IDENTITY = "101001/00001"  # CONDITIONAL
MARRIAGE = "101002/00001"  # CONDITIONAL
TAX = "105003/00001"  # CONDITIONAL
CRIMINAL = "301001/00001"  # NOT_SHARED

BDC_MATTER = "330100-BDC-0001"
ZF_MATTER = "330100-ZF-0003"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_builtin_catalogue()


def dept(uscc: str) -> Principal:
    return Principal(Role.DEPARTMENT, uscc)


def run(
    catalogue: Catalogue,
    caller: Principal,
    resource: str,
    fields: Sequence[str] = (),
    matter: str = BDC_MATTER,
    today: dt.date = TODAY,
) -> Decision:
    return decide(catalogue, caller, catalogue.resources[resource], fields, matter, today)


def denial(
    catalogue: Catalogue,
    caller: Principal,
    resource: str,
    fields: Sequence[str] = (),
    matter: str = BDC_MATTER,
    today: dt.date = TODAY,
) -> GovshareError:
    with pytest.raises(GovshareError) as raised:
        run(catalogue, caller, resource, fields, matter, today)
    return raised.value


def with_grants(catalogue: Catalogue, *extra: Grant) -> Catalogue:
    return Catalogue.build(
        catalogue.departments.values(),
        catalogue.resources.values(),
        catalogue.certificate_types.values(),
        [*catalogue.grants, *extra],
        catalogue.matters.values(),
    )


def with_matter_deleted(catalogue: Catalogue, code: str) -> Catalogue:
    """The catalogue after an administrator's DeleteMatter (soft: the matter stays, marked)."""
    deleted = dataclasses.replace(
        catalogue.matters[code], delete_time=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    )
    return Catalogue.build(
        catalogue.departments.values(),
        catalogue.resources.values(),
        catalogue.certificate_types.values(),
        catalogue.grants,
        [deleted, *(m for c, m in catalogue.matters.items() if c != code)],
    )


class TestUnconditional:
    @pytest.mark.parametrize("caller", [HOUSING, LAND_REGISTRY, PUBLIC_SECURITY])
    def test_any_registered_department_gets_every_item(
        self, catalogue: Catalogue, caller: str
    ) -> None:
        """An UNCONDITIONAL resource hands every active department all items, no grant."""
        decision = run(catalogue, dept(caller), LICENCE, matter=ZF_MATTER)
        assert decision.fields == catalogue.resources[LICENCE].data_item_names
        assert len(decision.fields) == 10
        assert decision.grant_ids == ()
        assert decision.resource.code == LICENCE

    def test_requested_subset_in_requested_order(self, catalogue: Catalogue) -> None:
        """Requested items come back exactly as requested."""
        decision = run(catalogue, dept(HOUSING), LICENCE, ["status", "uscc"])
        assert decision.fields == ("status", "uscc")

    def test_unknown_item_is_field_unknown(self, catalogue: Catalogue) -> None:
        """An item the resource does not have is FIELD_UNKNOWN, naming only unknown items."""
        error = denial(catalogue, dept(HOUSING), LICENCE, ["uscc", "nope", "also_nope"])
        assert error.reason is Reason.FIELD_UNKNOWN
        assert error.metadata == {"resource": LICENCE, "fields": "nope,also_nope"}


class TestConditional:
    def test_valid_grant_gives_granted_items_in_resource_order(self, catalogue: Catalogue) -> None:
        """With no items requested, exactly the granted items come back in catalogue order."""
        decision = run(catalogue, dept(LAND_REGISTRY), IDENTITY)
        assert decision.fields == ("citizen_id", "name", "sex", "birth_date", "address")
        assert decision.grant_ids == ("g-bdc-identity",)

    def test_every_matter_of_the_grant_is_covered(self, catalogue: Catalogue) -> None:
        """A grant naming two matters serves both."""
        decision = run(catalogue, dept(LAND_REGISTRY), IDENTITY, matter="330100-BDC-0002")
        assert decision.grant_ids == ("g-bdc-identity",)

    def test_requested_subset_in_requested_order(self, catalogue: Catalogue) -> None:
        """A requested subset of granted items comes back as requested."""
        decision = run(catalogue, dept(LAND_REGISTRY), IDENTITY, ["name", "citizen_id"])
        assert decision.fields == ("name", "citizen_id")

    def test_covering_grants_are_united(self, catalogue: Catalogue) -> None:
        """Two valid grants for the matter give the union of items and both grant ids."""
        base = catalogue.grants_for(HOUSING, IDENTITY)[0]
        second = dataclasses.replace(
            base, grant_id="g-zf-identity-2", data_items=frozenset({"sex"})
        )
        decision = run(with_grants(catalogue, second), dept(HOUSING), IDENTITY, matter=ZF_MATTER)
        assert decision.fields == ("citizen_id", "name", "sex")
        assert decision.grant_ids == ("g-zf-identity", "g-zf-identity-2")

    def test_expired_grant_adds_nothing(self, catalogue: Catalogue) -> None:
        """An expired grant's items are not granted even when a valid grant exists."""
        base = catalogue.grants_for(HOUSING, IDENTITY)[0]
        old = dataclasses.replace(
            base,
            grant_id="g-zf-identity-old",
            data_items=frozenset({"ethnicity"}),
            valid_from=dt.date(2020, 1, 1),
            valid_until=dt.date(2025, 12, 31),
        )
        patched = with_grants(catalogue, old)
        assert run(patched, dept(HOUSING), IDENTITY, matter=ZF_MATTER).grant_ids == (
            "g-zf-identity",
        )
        error = denial(patched, dept(HOUSING), IDENTITY, ["ethnicity"], matter=ZF_MATTER)
        assert error.reason is Reason.FIELD_NOT_GRANTED


class TestGrantValidity:
    @pytest.mark.parametrize(
        ("day", "allowed"),
        [
            (dt.date(2025, 12, 31), False),
            (dt.date(2026, 1, 1), True),
            (dt.date(2028, 12, 31), True),
            (dt.date(2029, 1, 1), False),
        ],
    )
    def test_first_and_last_day_inclusive(
        self, catalogue: Catalogue, day: dt.date, allowed: bool
    ) -> None:
        """A grant is usable from valid_from through valid_until, not a day outside."""
        if allowed:
            assert run(catalogue, dept(LAND_REGISTRY), IDENTITY, today=day).grant_ids
        else:
            error = denial(catalogue, dept(LAND_REGISTRY), IDENTITY, today=day)
            assert error.reason is Reason.GRANT_EXPIRED

    def test_expired_grant(self, catalogue: Catalogue) -> None:
        """g-zf-tax-expired ended 2025-12-31, so on 2026-11-23 it is GRANT_EXPIRED."""
        error = denial(catalogue, dept(HOUSING), TAX, matter=ZF_MATTER)
        assert error.reason is Reason.GRANT_EXPIRED
        assert error.metadata == {"resource": TAX}

    def test_expired_grant_on_its_last_day(self, catalogue: Catalogue) -> None:
        """The same grant was usable on 2025-12-31 and is refused on 2026-01-01."""
        last = run(catalogue, dept(HOUSING), TAX, matter=ZF_MATTER, today=dt.date(2025, 12, 31))
        assert last.fields == (
            "certificate_number",
            "taxpayer_name",
            "period_start",
            "period_end",
            "total_amount",
        )
        after = denial(catalogue, dept(HOUSING), TAX, matter=ZF_MATTER, today=dt.date(2026, 1, 1))
        assert after.reason is Reason.GRANT_EXPIRED

    def test_grant_not_yet_valid(self, catalogue: Catalogue) -> None:
        """Before valid_from the grant is not valid either (2023-12-31 for the tax grant)."""
        error = denial(catalogue, dept(HOUSING), TAX, matter=ZF_MATTER, today=dt.date(2023, 12, 31))
        assert error.reason is Reason.GRANT_EXPIRED
        first = run(catalogue, dept(HOUSING), TAX, matter=ZF_MATTER, today=dt.date(2024, 1, 1))
        assert first.grant_ids == ("g-zf-tax-expired",)


class TestDenials:
    def test_caller_unknown(self, catalogue: Catalogue) -> None:
        """A department not in the directory is CALLER_UNKNOWN, even for open resources."""
        error = denial(catalogue, dept(UNREGISTERED), LICENCE)
        assert error.reason is Reason.CALLER_UNKNOWN

    @pytest.mark.parametrize("resource", [LICENCE, IDENTITY, CRIMINAL])
    def test_caller_suspended(self, catalogue: Catalogue, resource: str) -> None:
        """A suspended department is refused before anything about the resource."""
        error = denial(catalogue, dept(SUSPENDED), resource)
        assert error.reason is Reason.CALLER_SUSPENDED

    @pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
    def test_role_required(self, catalogue: Catalogue, role: Role) -> None:
        """Administrators and auditors may not exchange data, even named like a department."""
        error = denial(catalogue, Principal(role, LAND_REGISTRY), LICENCE)
        assert error.reason is Reason.ROLE_REQUIRED
        assert error.metadata == {"role": "dept"}

    @pytest.mark.parametrize("caller", [LAND_REGISTRY, PUBLIC_SECURITY])
    def test_resource_not_shared(self, catalogue: Catalogue, caller: str) -> None:
        """NOT_SHARED is refused for everyone, its own provider included."""
        error = denial(catalogue, dept(caller), CRIMINAL)
        assert error.reason is Reason.RESOURCE_NOT_SHARED
        assert error.metadata == {"resource": CRIMINAL}
        assert "犯罪记录" in error.message

    @pytest.mark.parametrize("state", [ResourceState.DRAFT, ResourceState.RETIRED])
    def test_unpublished_resource_is_not_shared(
        self, catalogue: Catalogue, state: ResourceState
    ) -> None:
        """A DRAFT or RETIRED resource is not shared, even UNCONDITIONAL."""
        unpublished = dataclasses.replace(catalogue.resources[LICENCE], state=state)
        patched = Catalogue.build(
            catalogue.departments.values(),
            [unpublished, *(r for c, r in catalogue.resources.items() if c != LICENCE)],
            catalogue.certificate_types.values(),
            catalogue.grants,
            catalogue.matters.values(),
        )
        error = denial(patched, dept(HOUSING), LICENCE)
        assert error.reason is Reason.RESOURCE_NOT_SHARED
        assert run(catalogue, dept(HOUSING), LICENCE).fields

    def test_grant_required(self, catalogue: Catalogue) -> None:
        """CONDITIONAL with no grant for the caller is GRANT_REQUIRED."""
        error = denial(catalogue, dept(HOUSING), MARRIAGE, matter=ZF_MATTER)
        assert error.reason is Reason.GRANT_REQUIRED
        assert error.metadata == {"resource": MARRIAGE}

    def test_matter_not_covered(self, catalogue: Catalogue) -> None:
        """A valid grant for other matters is MATTER_NOT_COVERED, naming the matter."""
        error = denial(catalogue, dept(LAND_REGISTRY), IDENTITY, matter=ZF_MATTER)
        assert error.reason is Reason.MATTER_NOT_COVERED
        assert error.metadata == {"resource": IDENTITY, "matter_code": ZF_MATTER}

    def test_matter_covered_for_one_resource_only(self, catalogue: Catalogue) -> None:
        """BDC-0002 is granted on identity records but not on marriage records."""
        assert run(catalogue, dept(LAND_REGISTRY), IDENTITY, matter="330100-BDC-0002").fields
        error = denial(catalogue, dept(LAND_REGISTRY), MARRIAGE, matter="330100-BDC-0002")
        assert error.reason is Reason.MATTER_NOT_COVERED

    def test_field_not_granted(self, catalogue: Catalogue) -> None:
        """Asking for an item the grant leaves out is FIELD_NOT_GRANTED, naming it."""
        error = denial(catalogue, dept(LAND_REGISTRY), IDENTITY, ["name", "ethnicity"])
        assert error.reason is Reason.FIELD_NOT_GRANTED
        assert error.metadata == {"resource": IDENTITY, "fields": "ethnicity"}

    def test_field_unknown_on_conditional(self, catalogue: Catalogue) -> None:
        """An item the resource does not have is FIELD_UNKNOWN, not FIELD_NOT_GRANTED."""
        error = denial(catalogue, dept(LAND_REGISTRY), IDENTITY, ["name", "salary"])
        assert error.reason is Reason.FIELD_UNKNOWN
        assert error.metadata == {"resource": IDENTITY, "fields": "salary"}


class TestMatterInCatalogue:
    """The matter code must name a matter the catalogue holds, for every sharing type."""

    BDC_0002 = "330100-BDC-0002"  # named by grant g-bdc-identity

    def test_deleted_matter_no_longer_opens_the_grant_naming_it(self, catalogue: Catalogue) -> None:
        """After DeleteMatter, a grant that still lists the matter serves nothing for it:
        MATTER_NOT_COVERED, saying the catalogue has no such matter."""
        assert run(catalogue, dept(LAND_REGISTRY), IDENTITY, matter=self.BDC_0002).grant_ids
        patched = with_matter_deleted(catalogue, self.BDC_0002)
        error = denial(patched, dept(LAND_REGISTRY), IDENTITY, matter=self.BDC_0002)
        assert error.reason is Reason.MATTER_NOT_COVERED
        assert "catalogue has no such matter" in error.message
        assert error.metadata == {"resource": IDENTITY, "matter_code": self.BDC_0002}

    def test_deleting_one_matter_leaves_the_grants_other_matters(
        self, catalogue: Catalogue
    ) -> None:
        """The grant still serves the matters it names that the catalogue keeps."""
        patched = with_matter_deleted(catalogue, self.BDC_0002)
        assert run(patched, dept(LAND_REGISTRY), IDENTITY, matter=BDC_MATTER).grant_ids == (
            "g-bdc-identity",
        )

    @pytest.mark.parametrize("matter", ["x", "any-matter", "330100-XX-9999"])
    def test_unconditional_resource_refuses_a_made_up_matter(
        self, catalogue: Catalogue, matter: str
    ) -> None:
        """No grant is involved, yet a matter code the catalogue does not hold is refused,
        so the audit log never records an access for a made-up matter."""
        error = denial(catalogue, dept(HOUSING), LICENCE, matter=matter)
        assert error.reason is Reason.MATTER_NOT_COVERED
        assert "catalogue has no such matter" in error.message
        assert error.metadata == {"resource": LICENCE, "matter_code": matter}

    def test_unconditional_resource_refuses_a_deleted_matter(self, catalogue: Catalogue) -> None:
        """A deleted matter is refused on an UNCONDITIONAL resource as well."""
        patched = with_matter_deleted(catalogue, ZF_MATTER)
        error = denial(patched, dept(HOUSING), LICENCE, matter=ZF_MATTER)
        assert error.reason is Reason.MATTER_NOT_COVERED

    def test_unconditional_resource_serves_any_catalogued_matter(
        self, catalogue: Catalogue
    ) -> None:
        """UNCONDITIONAL needs no grant: every matter of the catalogue is accepted."""
        for matter in catalogue.matters:
            assert run(catalogue, dept(HOUSING), LICENCE, matter=matter).fields

    def test_conditional_refuses_a_made_up_matter_even_without_a_grant(
        self, catalogue: Catalogue
    ) -> None:
        """The matter is checked before the grants, so the reason does not depend on them."""
        error = denial(catalogue, dept(HOUSING), MARRIAGE, matter="x")
        assert error.reason is Reason.MATTER_NOT_COVERED
        assert "catalogue has no such matter" in error.message


class TestAuthorizeDepartment:
    def test_active_department_passes(self, catalogue: Catalogue) -> None:
        """A registered, active department is authorised."""
        authorize_department(catalogue, dept(LAND_REGISTRY))

    @pytest.mark.parametrize(
        ("caller", "reason"),
        [
            (dept(UNREGISTERED), Reason.CALLER_UNKNOWN),
            (dept(SUSPENDED), Reason.CALLER_SUSPENDED),
            (Principal(Role.ADMIN, "ops"), Reason.ROLE_REQUIRED),
            (Principal(Role.AUDITOR, "audit"), Reason.ROLE_REQUIRED),
        ],
    )
    def test_refusals(self, catalogue: Catalogue, caller: Principal, reason: Reason) -> None:
        """Unknown, suspended and non-department callers are refused with their reason."""
        with pytest.raises(GovshareError) as raised:
            authorize_department(catalogue, caller)
        assert raised.value.reason is reason
