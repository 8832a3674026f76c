// The gateway's API description: an OpenAPI 3 document generated from the
// descriptors of the services loaded now (every method at /rpc/..., the REST
// routes, message schemas with their proto comments where the pool has them,
// each operation's minimum role), and a self-contained page that browses it.
#pragma once

#include <string>

#include "kernel/http/route_table.h"

namespace telekern::kernel::http {

std::string openapi_json(const RouteTable& routes, const std::string& version);

// /api/docs and /swagger/: HTML that loads /api/openapi.json, no CDN.
const std::string& api_docs_page();

}  // namespace telekern::kernel::http
