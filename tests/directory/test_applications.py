"""Sharing applications: validation, every transition of the state machine
(legal and illegal), grants created and revoked with them, due dates, overdue."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from govshare.directory import (
    MAX_PURPOSE_LENGTH,
    AlreadyExists,
    ApplicationRequest,
    ApplicationState,
    EtagMismatch,
    FailedPrecondition,
    GrantState,
    InvalidArgument,
    InvalidTransition,
    NotFound,
    SharingApplication,
    SharingType,
    SqlCatalogueStore,
    WorkingCalendar,
    approve,
    can_transition,
    expire,
    load_builtin_catalogue,
    reject,
    revoke,
)

HOUSING = "113301000024821070"
CIVIL_AFFAIRS = "11330100002482103K"
PUBLIC_SECURITY = "11330100002482102G"
MARRIAGE = "101002/00001"
LICENCE = "105001/00001"
CRIMINAL = "301001/00001"
ADMIN = "admin/ops"
CLERK = f"dept/{HOUSING}"
DECIDER = f"dept/{CIVIL_AFFAIRS}"
MONDAY = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 09:00 in Beijing


class Clock:
    """A settable clock, so tests can move past due dates and validity ends."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
async def store(seeded: Any, clock: Clock) -> AsyncIterator[SqlCatalogueStore]:
    """A store on a fresh copy of the seed (conftest.Database), on the settable clock."""
    opened = seeded.open(clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


def request(**changes: object) -> ApplicationRequest:
    base = ApplicationRequest(
        consumer=HOUSING,
        resource=MARRIAGE,
        data_items=("marital_status", "spouse_name"),
        matter_codes=("330100-ZF-0003",),
        purpose="公租房资格审核核验婚姻状况",
        legal_basis="《公共租赁住房管理办法》第七条",
        valid_from=dt.date(2026, 3, 1),
        valid_until=dt.date(2026, 12, 31),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def applied(store: SqlCatalogueStore, **changes: object) -> SharingApplication:
    return await store.create_application(request(**changes), actor=CLERK)


class TestCreate:
    async def test_new_application_is_applied_with_a_due_date(
        self, store: SqlCatalogueStore
    ) -> None:
        """A valid request is APPLIED, names the provider, and is due in 10 working days."""
        app = await applied(store)
        assert app.state is ApplicationState.APPLIED
        assert app.provider == CIVIL_AFFAIRS
        assert app.create_time == MONDAY
        assert app.due_date == dt.date(2026, 3, 16)
        assert (app.grant_id, app.decided_by, app.decide_time) == ("", "", None)
        assert await store.get_application(app.application_id) == app

    async def test_due_days_and_holidays_come_from_configuration(self, database: Any) -> None:
        """A store configured with 2 working days and a holiday uses them."""
        calendar = WorkingCalendar(holidays=frozenset({dt.date(2026, 3, 3)}))
        configured = database.open(
            calendar=calendar,
            due_working_days=2,
            clock=lambda: MONDAY,
        )
        try:
            await configured.create_schema()
            await configured.replace(load_builtin_catalogue())
            app = await configured.create_application(request(), actor=CLERK)
        finally:
            await configured.close()
        assert app.due_date == dt.date(2026, 3, 5)

    async def test_unknown_resource(self, store: SqlCatalogueStore) -> None:
        """Applying for a resource that does not exist is NotFound."""
        with pytest.raises(NotFound) as raised:
            await applied(store, resource="999999/00001")
        assert raised.value.reason == "RESOURCE_NOT_FOUND"

    @pytest.mark.parametrize(
        ("resource", "reason"),
        [(LICENCE, "APPLICATION_NOT_NEEDED"), (CRIMINAL, "RESOURCE_NOT_SHARED")],
    )
    async def test_only_conditional_resources_take_applications(
        self, store: SqlCatalogueStore, resource: str, reason: str
    ) -> None:
        """UNCONDITIONAL needs no application and NOT_SHARED cannot have one."""
        items = (await store.get_resource(resource)).data_item_names[:1]
        with pytest.raises(FailedPrecondition) as raised:
            await applied(store, resource=resource, data_items=items)
        assert raised.value.reason == reason

    async def test_unpublished_resource(self, store: SqlCatalogueStore) -> None:
        """A RETIRED resource cannot be applied for."""
        await store.retire_resource(MARRIAGE, actor=ADMIN)
        with pytest.raises(FailedPrecondition) as raised:
            await applied(store)
        assert raised.value.reason == "RESOURCE_NOT_PUBLISHED"

    async def test_every_bad_field_is_reported(self, store: SqlCatalogueStore) -> None:
        """Unknown items, no matters, a long purpose and reversed validity: four violations."""
        with pytest.raises(InvalidArgument) as raised:
            await applied(
                store,
                data_items=("marital_status", "salary"),
                matter_codes=(),
                purpose="x" * (MAX_PURPOSE_LENGTH + 1),
                valid_until=dt.date(2026, 2, 1),
            )
        fields = [field for field, _ in raised.value.violations]
        assert fields == ["data_items", "matter_codes", "purpose", "valid_until"]
        assert "salary" in raised.value.violations[0][1]
        page = await store.list_applications()
        assert page.items == ()

    async def test_purpose_of_exactly_200_characters(self, store: SqlCatalogueStore) -> None:
        """200 characters of 事由 is the limit, inclusive."""
        app = await applied(store, purpose="审" * MAX_PURPOSE_LENGTH)
        assert len(app.purpose) == MAX_PURPOSE_LENGTH

    async def test_empty_purpose_and_data_items(self, store: SqlCatalogueStore) -> None:
        """A blank purpose and no data items are refused."""
        with pytest.raises(InvalidArgument) as raised:
            await applied(store, purpose="  ", data_items=())
        assert [f for f, _ in raised.value.violations] == ["data_items", "purpose"]

    async def test_unregistered_consumer(self, store: SqlCatalogueStore) -> None:
        """The consumer must be a registered department."""
        with pytest.raises(InvalidArgument) as raised:
            await applied(store, consumer="91110108551385082Q")
        assert raised.value.violations == [("consumer", "not a registered department")]

    async def test_chosen_id_must_be_free(self, store: SqlCatalogueStore) -> None:
        """An application id can be chosen once."""
        await store.create_application(request(), application_id="zf-2026-001", actor=CLERK)
        with pytest.raises(AlreadyExists):
            await store.create_application(request(), application_id="zf-2026-001", actor=CLERK)


def sample(state: ApplicationState) -> SharingApplication:
    return SharingApplication(
        application_id="a1",
        consumer=HOUSING,
        provider=CIVIL_AFFAIRS,
        resource=MARRIAGE,
        data_items=("marital_status",),
        matter_codes=("330100-ZF-0003",),
        purpose="核验",
        legal_basis="",
        valid_from=dt.date(2026, 1, 1),
        valid_until=dt.date(2026, 6, 30),
        create_time=MONDAY,
        due_date=dt.date(2026, 3, 16),
        state=state,
    )


ACTIONS = ("approve", "reject", "revoke", "expire")
LEGAL = {
    (ApplicationState.APPLIED, "approve"): ApplicationState.APPROVED,
    (ApplicationState.APPLIED, "reject"): ApplicationState.REJECTED,
    (ApplicationState.APPROVED, "revoke"): ApplicationState.REVOKED,
    (ApplicationState.APPROVED, "expire"): ApplicationState.EXPIRED,
}


def act(app: SharingApplication, action: str) -> SharingApplication:
    now = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    if action == "approve":
        return approve(
            app, load_builtin_catalogue(), actor=ADMIN, now=now, today=dt.date(2026, 3, 2)
        )[0]
    if action == "reject":
        return reject(app, actor=ADMIN, now=now, reason="不符合共享条件")
    if action == "revoke":
        return revoke(app, None, now=now)[0]
    return expire(app, None, now=now, today=dt.date(2026, 7, 1))[0]


class TestStateMachine:
    @pytest.mark.parametrize(
        ("state", "action"), list(itertools.product(ApplicationState, ACTIONS))
    )
    def test_every_state_and_action(self, state: ApplicationState, action: str) -> None:
        """The four legal moves land in their state; all sixteen others raise InvalidTransition."""
        target = LEGAL.get((state, action))
        if target is None:
            with pytest.raises(InvalidTransition) as raised:
                act(sample(state), action)
            assert raised.value.reason == "APPLICATION_STATE"
            assert state.value in raised.value.message
        else:
            assert act(sample(state), action).state is target
            assert can_transition(state, target)

    def test_terminal_states_go_nowhere(self) -> None:
        """REJECTED, REVOKED and EXPIRED are final."""
        finals = [ApplicationState.REJECTED, ApplicationState.REVOKED, ApplicationState.EXPIRED]
        assert not any(can_transition(a, b) for a in finals for b in ApplicationState)

    def test_expire_before_the_end_is_refused(self) -> None:
        """An APPROVED application still inside its validity does not expire."""
        with pytest.raises(InvalidTransition):
            expire(
                sample(ApplicationState.APPROVED),
                None,
                now=MONDAY,
                today=dt.date(2026, 6, 30),
            )


class TestDecisions:
    async def test_approval_creates_the_grant_that_was_applied_for(
        self, store: SqlCatalogueStore
    ) -> None:
        """APPROVED records the decider and creates an ACTIVE grant served by the snapshot."""
        app = await applied(store)
        approved = await store.approve_application(app.application_id, actor=DECIDER)
        assert approved.state is ApplicationState.APPROVED
        assert (approved.decided_by, approved.decide_time) == (DECIDER, MONDAY)
        grant = await store.get_grant(approved.grant_id)
        assert grant.state is GrantState.ACTIVE
        assert grant.application_id == app.application_id
        assert grant.data_items == frozenset(app.data_items)
        assert grant.matter_codes == frozenset(app.matter_codes)
        assert (grant.valid_from, grant.valid_until) == (app.valid_from, app.valid_until)
        served = (await store.load()).grants_for(HOUSING, MARRIAGE)
        assert served == (grant,)
        actions = [e.action for e in (await store.list_events(filter="seq > 1")).items]
        assert actions == ["application.create", "application.approve", "grant.create"]

    async def test_rejection_needs_a_reason(self, store: SqlCatalogueStore) -> None:
        """An empty or blank reason is refused and the application stays APPLIED."""
        app = await applied(store)
        for blank in ("", "   "):
            with pytest.raises(InvalidArgument) as raised:
                await store.reject_application(app.application_id, reason=blank, actor=DECIDER)
            assert raised.value.violations[0][0] == "reason"
        assert (await store.get_application(app.application_id)).state is ApplicationState.APPLIED

    async def test_rejection_with_reason(self, store: SqlCatalogueStore) -> None:
        """REJECTED keeps the reason and creates no grant."""
        app = await applied(store)
        rejected = await store.reject_application(
            app.application_id, reason="用途超出共享条件", actor=DECIDER
        )
        assert (rejected.state, rejected.reason, rejected.grant_id) == (
            ApplicationState.REJECTED,
            "用途超出共享条件",
            "",
        )
        assert (await store.load()).grants_for(HOUSING, MARRIAGE) == ()

    async def test_illegal_moves_in_the_store(self, store: SqlCatalogueStore) -> None:
        """Revoking an APPLIED one, or deciding a decided one, is InvalidTransition."""
        app = await applied(store)
        with pytest.raises(InvalidTransition):
            await store.revoke_application(app.application_id, actor=ADMIN)
        await store.reject_application(app.application_id, reason="不符合", actor=DECIDER)
        with pytest.raises(InvalidTransition):
            await store.approve_application(app.application_id, actor=DECIDER)
        with pytest.raises(InvalidTransition):
            await store.reject_application(app.application_id, reason="again", actor=DECIDER)

    async def test_revocation_revokes_the_grant(self, store: SqlCatalogueStore) -> None:
        """Revoking the application revokes its grant: the snapshot no longer serves it."""
        app = await applied(store)
        approved = await store.approve_application(app.application_id, actor=DECIDER)
        revoked = await store.revoke_application(
            app.application_id, reason="事项已办结", actor=ADMIN
        )
        assert (revoked.state, revoked.reason) == (ApplicationState.REVOKED, "事项已办结")
        assert (await store.get_grant(approved.grant_id)).state is GrantState.REVOKED
        catalogue = await store.load()
        assert catalogue.grants_for(HOUSING, MARRIAGE) == ()
        assert approved.grant_id in {g.grant_id for g in catalogue.grants}

    async def test_revoking_the_grant_revokes_the_application(
        self, store: SqlCatalogueStore
    ) -> None:
        """RevokeGrant takes the application with it; revoking twice is InvalidTransition."""
        app = await applied(store)
        approved = await store.approve_application(app.application_id, actor=DECIDER)
        grant = await store.revoke_grant(approved.grant_id, actor=ADMIN)
        assert grant.state is GrantState.REVOKED
        after = await store.get_application(app.application_id)
        assert after.state is ApplicationState.REVOKED
        with pytest.raises(InvalidTransition):
            await store.revoke_grant(approved.grant_id, actor=ADMIN)

    async def test_seed_grant_without_application_can_be_revoked(
        self, store: SqlCatalogueStore
    ) -> None:
        """A grant loaded from the catalogue file is revoked on its own."""
        grant = await store.revoke_grant("g-bdc-identity", actor=ADMIN)
        assert grant.state is GrantState.REVOKED
        assert (await store.load()).grants_for("11330100002482106W", "101001/00001") == ()

    async def test_stale_etag_on_a_decision(self, store: SqlCatalogueStore) -> None:
        """Deciding on an application that changed since it was read is EtagMismatch."""
        app = await applied(store)
        await store.reject_application(app.application_id, reason="不符合", actor=DECIDER)
        with pytest.raises(EtagMismatch):
            await store.approve_application(app.application_id, etag=app.etag, actor=ADMIN)

    async def test_approval_after_the_validity_ended(
        self, store: SqlCatalogueStore, clock: Clock
    ) -> None:
        """An application whose requested validity is over cannot be approved."""
        app = await applied(store, valid_until=dt.date(2026, 3, 10))
        clock.now = dt.datetime(2026, 3, 11, 1, tzinfo=dt.UTC)
        with pytest.raises(FailedPrecondition) as raised:
            await store.approve_application(app.application_id, actor=DECIDER)
        assert raised.value.reason == "VALIDITY_ENDED"

    async def test_decision_is_idempotent_by_request_id(self, store: SqlCatalogueStore) -> None:
        """Approving twice with one request id answers the first result again."""
        app = await applied(store)
        first = await store.approve_application(app.application_id, actor=DECIDER, request_id="q1")
        again = await store.approve_application(app.application_id, actor=DECIDER, request_id="q1")
        assert again == first
        with pytest.raises(InvalidTransition):
            await store.approve_application(app.application_id, actor=DECIDER, request_id="q2")


class TestExpiry:
    async def test_expire_due_flips_applications_and_grants(self, store: SqlCatalogueStore) -> None:
        """Past valid_until, APPROVED applications and ACTIVE grants become EXPIRED."""
        app = await applied(store, valid_until=dt.date(2026, 4, 30))
        approved = await store.approve_application(app.application_id, actor=DECIDER)
        on_last_day = await store.expire_due(dt.date(2026, 4, 30))
        assert (on_last_day.applications, on_last_day.grants) == ((), ("g-zf-tax-expired",))
        assert (await store.get_application(app.application_id)).state is ApplicationState.APPROVED
        report = await store.expire_due(dt.date(2026, 5, 1))
        assert (report.applications, report.grants) == ((app.application_id,), (approved.grant_id,))
        assert (await store.get_application(app.application_id)).state is ApplicationState.EXPIRED
        assert (await store.get_grant(approved.grant_id)).state is GrantState.EXPIRED
        # Still indexed so the exchange can answer GRANT_EXPIRED, but no longer ACTIVE.
        kept = (await store.load()).grants_for(HOUSING, MARRIAGE)
        assert [g.state for g in kept] == [GrantState.EXPIRED]

    async def test_nothing_to_expire_writes_nothing(self, store: SqlCatalogueStore) -> None:
        """A second run finds nothing and leaves the revision alone."""
        await store.expire_due(dt.date(2026, 5, 1))
        revision = await store.revision()
        report = await store.expire_due(dt.date(2026, 5, 1))
        assert (report.applications, report.grants) == ((), ())
        assert await store.revision() == revision


class TestOverdue:
    async def test_overdue_is_listed_and_counted(
        self, store: SqlCatalogueStore, clock: Clock
    ) -> None:
        """After the due date an undecided application is overdue; a decided one is not."""
        late = await applied(store)
        decided = await applied(store)
        await store.reject_application(decided.application_id, reason="不符合", actor=DECIDER)
        other = await applied(
            store, resource="101001/00001", data_items=("name",), matter_codes=("M-1",)
        )
        assert other.provider == PUBLIC_SECURITY
        assert await store.count_overdue() == 0
        clock.now = dt.datetime(2026, 3, 16, 15, 59, tzinfo=dt.UTC)  # 23:59 on the due day
        assert await store.count_overdue() == 0
        clock.now = dt.datetime(2026, 3, 16, 16, 0, tzinfo=dt.UTC)  # 17 March in Beijing
        assert await store.count_overdue() == 2
        assert await store.count_overdue(provider=CIVIL_AFFAIRS) == 1
        page = await store.list_applications(
            filter="overdue = true AND provider = " + CIVIL_AFFAIRS
        )
        assert [a.application_id for a in page.items] == [late.application_id]
        assert late.is_overdue(dt.date(2026, 3, 17))
        assert not late.is_overdue(dt.date(2026, 3, 16))

    async def test_list_by_state_and_due_date(self, store: SqlCatalogueStore) -> None:
        """Applications filter by state and compare due dates."""
        first = await applied(store)
        second = await applied(store)
        await store.approve_application(second.application_id, actor=DECIDER)
        page = await store.list_applications(filter="state = APPLIED AND due_date <= 2026-03-16")
        assert [a.application_id for a in page.items] == [first.application_id]
        with pytest.raises(InvalidArgument):
            await store.list_applications(filter="state = PENDING")


class TestApprovalChecksTheResourceAgain:
    """What open_application checked may change while an application waits."""

    @staticmethod
    async def refused(store: SqlCatalogueStore, app: SharingApplication) -> FailedPrecondition:
        with pytest.raises(FailedPrecondition) as raised:
            await store.approve_application(app.application_id, actor=DECIDER)
        current = await store.get_application(app.application_id)
        assert (current.state, current.grant_id) == (ApplicationState.APPLIED, "")
        grants = await store.list_grants(filter=f'application_id = "{app.application_id}"')
        assert grants.items == ()
        return raised.value

    async def test_a_resource_made_not_shared_is_not_granted(
        self, store: SqlCatalogueStore
    ) -> None:
        """An application for a resource since made NOT_SHARED is refused as a new one would be."""
        app = await applied(store)
        current = await store.get_resource(MARRIAGE)
        await store.update_resource(
            dataclasses.replace(
                current, sharing_type=SharingType.NOT_SHARED, legal_basis="《某条例》"
            ),
            update_mask=["sharing_type", "legal_basis"],
            actor=ADMIN,
        )
        assert (await self.refused(store, app)).reason == "RESOURCE_NOT_SHARED"

    async def test_a_resource_made_unconditional_needs_no_grant(
        self, store: SqlCatalogueStore
    ) -> None:
        """An application for a resource since made UNCONDITIONAL is APPLICATION_NOT_NEEDED."""
        app = await applied(store)
        current = await store.get_resource(MARRIAGE)
        await store.update_resource(
            dataclasses.replace(current, sharing_type=SharingType.UNCONDITIONAL),
            update_mask=["sharing_type"],
            actor=ADMIN,
        )
        assert (await self.refused(store, app)).reason == "APPLICATION_NOT_NEEDED"

    async def test_a_retired_or_deleted_resource_is_not_granted(
        self, store: SqlCatalogueStore
    ) -> None:
        """Retired or deleted since the application: RESOURCE_NOT_PUBLISHED."""
        retired = await applied(store)
        await store.retire_resource(MARRIAGE, actor=ADMIN)
        assert (await self.refused(store, retired)).reason == "RESOURCE_NOT_PUBLISHED"
        deleted = await applied(
            store, resource="101001/00001", data_items=("name",), matter_codes=("M-1",)
        )
        await store.delete_resource("101001/00001", actor=ADMIN)
        assert (await self.refused(store, deleted)).reason == "RESOURCE_NOT_PUBLISHED"

    async def test_removed_data_items_are_not_granted(self, store: SqlCatalogueStore) -> None:
        """A data item applied for but since removed from the resource refuses the approval."""
        app = await applied(store)
        # The seed's ACTIVE grant on spouse_name would keep it in the resource (DATA_ITEMS_IN_USE).
        await store.revoke_grant("g-bdc-marriage", actor=ADMIN)
        current = await store.get_resource(MARRIAGE)
        kept = tuple(i for i in current.data_items if i.name != "spouse_name")
        await store.update_resource(
            dataclasses.replace(current, data_items=kept), update_mask=["data_items"], actor=ADMIN
        )
        refused = await self.refused(store, app)
        assert refused.reason == "DATA_ITEMS_REMOVED"
        assert refused.metadata["data_items"] == "spouse_name"

    async def test_a_deleted_consumer_is_not_granted(self, store: SqlCatalogueStore) -> None:
        """A consumer deleted since it applied gets no grant (an import could revive it)."""
        app = await applied(store)
        await store.delete_department(HOUSING, actor=ADMIN)
        assert (await self.refused(store, app)).reason == "CONSUMER_NOT_REGISTERED"
