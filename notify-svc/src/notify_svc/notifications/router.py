"""/api/v1/notifications contacts, rules and settings.

A contact is keyed by the identity provider's user id within the caller's org: reading another
org's user answers 404 like an unknown one, and writing it makes a contact in the caller's own
org (the read route is declared first, so the docs list it first).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from notify_svc.notifications import service
from notify_svc.notifications.schemas import (
    ContactRead,
    ContactUpdate,
    RuleList,
    RulesUpdate,
    SettingsRead,
    SettingsUpdate,
    WebhookSecret,
)
from notify_svc.settings import Settings
from servicekit.auth import CurrentUser, Principal, require_roles
from servicekit.db import unit_of_work

PREFIX = "/api/v1/notifications"
router = APIRouter(prefix=PREFIX, tags=["notifications"])

Manager = Annotated[Principal, Depends(require_roles("planner"))]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get(
    "/contacts/{user_id}",
    response_model=ContactRead,
    summary="How a user is reached",
    responses={
        403: {"description": "ROLE_REQUIRED: another user's contact"},
        404: {"description": "CONTACT_NOT_FOUND"},
    },
)
async def get_contact(
    user_id: uuid.UUID, principal: CurrentUser, session: AsyncSession = unit_of_work()
) -> ContactRead:
    service.check_contact_access(principal, user_id)
    contact = await service.get_contact(session, org_id=principal.org, user_id=user_id)
    return ContactRead.model_validate(contact)


@router.put(
    "/contacts/{user_id}",
    response_model=ContactRead,
    summary="Set how a user is reached by e-mail (your own; admin and planner: anyone's)",
    responses={403: {"description": "ROLE_REQUIRED: another user's contact"}},
)
async def put_contact(
    user_id: uuid.UUID,
    body: ContactUpdate,
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> ContactRead:
    service.check_contact_access(principal, user_id)
    contact = await service.put_contact(session, org_id=principal.org, user_id=user_id, body=body)
    return ContactRead.model_validate(contact)


@router.get("/rules", response_model=RuleList, summary="Which events e-mail whom (with defaults)")
async def list_rules(principal: Manager, session: AsyncSession = unit_of_work()) -> RuleList:
    return RuleList(items=await service.list_rules(session, org_id=principal.org))


@router.put(
    "/rules",
    response_model=RuleList,
    summary="Change rules: enable, disable, choose recipients",
    responses={422: {"description": "EVENT_TYPE_UNKNOWN; VALIDATION_FAILED (an address)"}},
)
async def put_rules(
    body: RulesUpdate, principal: Manager, session: AsyncSession = unit_of_work()
) -> RuleList:
    return RuleList(items=await service.put_rules(session, org_id=principal.org, body=body))


@router.get("/settings", response_model=SettingsRead, summary="The org's reminder settings")
async def get_settings(principal: Manager, session: AsyncSession = unit_of_work()) -> SettingsRead:
    return await service.get_settings(session, org_id=principal.org)


@router.put(
    "/settings",
    response_model=SettingsRead,
    summary="Set the reminder lead time, overdue notices and the approvers' address",
)
async def put_settings(
    body: SettingsUpdate, principal: Manager, session: AsyncSession = unit_of_work()
) -> SettingsRead:
    return await service.put_settings(session, org_id=principal.org, body=body)


@router.post(
    "/settings/webhook-secret",
    response_model=WebhookSecret,
    summary="A new secret that signs one-off webhook jobs (shown once; replaces the old one)",
)
async def new_webhook_secret(
    request: Request, principal: Manager, session: AsyncSession = unit_of_work()
) -> WebhookSecret:
    secret = await service.new_webhook_secret(
        session, settings=_settings(request), org_id=principal.org
    )
    return WebhookSecret(secret=secret)
