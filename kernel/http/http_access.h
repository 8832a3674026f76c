// Who may read what on the HTTP endpoint when auth is on: /metrics needs a
// viewer credential (unless http_public_metrics), and /health and /ready
// name modules only to viewers.
#pragma once

#include <absl/status/status.h>

#include <string_view>

#include "kernel/auth/authenticator.h"

namespace telekern::kernel::http {

// OK when auth is off, or when the request carries a viewer (or higher)
// credential: `X-API-Key: KEY`, or `Authorization: Bearer T` where T is a JWT
// from Login or an API key (what Prometheus' `authorization` scrape setting
// sends). Otherwise UNAUTHENTICATED or PERMISSION_DENIED saying what to send.
absl::Status authorize_http_viewer(const auth::Authenticator& authenticator,
                                   std::string_view api_key, std::string_view authorization);

}  // namespace telekern::kernel::http
