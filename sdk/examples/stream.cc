// Example: a server-streaming call through the read_server_stream() helper, stopping
// early from the callback.  telekern_example_stream [COUNT [STOP_AFTER]]
#include <iostream>

#include "telekern/client.h"
#include "telekern/testing/v1/echo.grpc.pb.h"

int main(int argc, char** argv) {
  namespace tv1 = telekern::testing::v1;
  telekern::Client client;
  auto echo = client.stub<tv1::Echo>();
  tv1::CountRequest request;
  request.set_count(argc > 1 ? std::stoi(argv[1]) : 5);
  request.set_interval_ms(10);
  uint32_t stop_after = argc > 2 ? std::stoi(argv[2]) : request.count();
  absl::Status status =
      telekern::read_server_stream<tv1::Echo::Stub, tv1::CountRequest, tv1::CountResponse>(
          client, *echo, &tv1::Echo::Stub::Count, request, [&](const tv1::CountResponse& response) {
            std::cout << "progress " << response.done() << "/" << response.total() << "\n";
            return response.done() < stop_after;  // false cancels the call
          });
  std::cout << "status " << absl::StatusCodeToString(status.code()) << "\n";
  return status.ok() || status.code() == absl::StatusCode::kCancelled ? 0 : 1;
}
