#include "kernel/http/http_access.h"

#include "telekern/strings.h"

namespace telekern::kernel::http {

absl::Status authorize_http_viewer(const auth::Authenticator& authenticator,
                                   std::string_view api_key, std::string_view authorization) {
  if (!authenticator.enabled()) return absl::OkStatus();
  constexpr std::string_view kHint =
      "send a viewer credential: header X-API-Key: KEY, or Authorization: Bearer KEY-or-JWT "
      "(Prometheus: `authorization: {credentials: KEY}`), or set http_public_metrics: true "
      "for /metrics";
  if (api_key.empty() && authorization.empty()) {
    return absl::UnauthenticatedError(str_cat("no credentials; ", kHint));
  }
  auto identity = authenticator.authenticate(api_key, authorization);
  constexpr std::string_view kBearer = "bearer ";
  if (!identity.ok() && api_key.empty() && authorization.size() > kBearer.size() &&
      to_lower(authorization.substr(0, kBearer.size())) == kBearer) {
    // Not a valid JWT: it may be an API key sent as a bearer token.
    auto as_key = authenticator.authenticate(authorization.substr(kBearer.size()), "");
    if (as_key.ok()) identity = as_key;
  }
  if (!identity.ok()) {
    return absl::UnauthenticatedError(str_cat(identity.status().message(), "; ", kHint));
  }
  return authenticator.authorize(*identity, options::v1::ROLE_VIEWER, "HTTP /metrics");
}

}  // namespace telekern::kernel::http
