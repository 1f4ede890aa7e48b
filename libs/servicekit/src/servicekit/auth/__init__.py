"""Who is calling, and may they: bearer JWT (RS256) verification and the FastAPI dependencies.

- `principal`: `Principal` and the role names;
- `verify`: `TokenVerifier` (PEM key and/or JWKS URL), the claims a token must carry;
- `deps`: the dependencies of routes, as `Annotated` aliases (`CurrentUser`, `ServiceCaller`, and
  each service's own, e.g. `Inspector = Annotated[Principal, Depends(require_roles("inspector"))]`);
- `service_tokens`: the token a service presents to another's internal routes.

Minting tokens for people is dev tooling: `servicekit.devstack.tokens.mint_token`.
"""

from servicekit.auth.deps import (
    CurrentUser,
    ServiceCaller,
    authenticate_service,
    authenticate_user,
    current_principal,
    ensure_user,
    require_roles,
)
from servicekit.auth.principal import ROLES, SERVICE_ROLE, Principal
from servicekit.auth.service_tokens import ServiceTokenProvider
from servicekit.auth.verify import TokenVerifier, principal_from_claims

__all__ = [
    "ROLES",
    "SERVICE_ROLE",
    "CurrentUser",
    "Principal",
    "ServiceCaller",
    "ServiceTokenProvider",
    "TokenVerifier",
    "authenticate_service",
    "authenticate_user",
    "current_principal",
    "ensure_user",
    "principal_from_claims",
    "require_roles",
]
