// ProduceStream in a real telekernd: pipelined requests answered by sequence,
// per-request errors that leave the stream open, and records of one stream
// appended to each partition in request order.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/broker/broker_client.h"

namespace telekern::testing {
namespace {

constexpr uint64_t kRequests = 400;
constexpr uint64_t kTooLarge = 57;  // carries a record over max_record_bytes
constexpr uint64_t kEmpty = 211;    // carries no record at all

bv1::ProduceRequest stream_request(uint64_t sequence) {
  bv1::ProduceRequest request;
  request.set_topic("pipelined");
  request.set_sequence(sequence);
  request.set_partition(static_cast<uint32_t>(sequence % 2));
  // NONE answers at once, FSYNC after the group commit: answers overtake each other.
  request.set_durability(sequence % 3 == 0 ? bv1::DURABILITY_FSYNC : bv1::DURABILITY_NONE);
  if (sequence == kEmpty) return request;
  auto* record = request.add_records();
  record->set_value(sequence == kTooLarge ? std::string(2000, 'x')
                                          : "s" + std::to_string(sequence));
  auto* header = record->add_headers();
  header->set_key("sequence");
  header->set_value(std::to_string(sequence));
  return request;
}

TEST(BrokerProduceStreamTest, PipelinesKeepsOrderPerPartitionAndSurvivesErrors) {
  Telekernd daemon(broker_options("    max_record_bytes: 1000\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("pipelined", 2).ok());

  auto stream_context = context(30s);
  auto stream = client.stub().ProduceStream(stream_context.get());
  std::mutex mutex;
  std::map<uint64_t, bv1::ProduceResponse> answers;
  size_t duplicates = 0;
  // Answers are read while requests are still being written: the stream is pipelined.
  std::thread reader([&] {
    bv1::ProduceResponse response;
    while (stream->Read(&response)) {
      std::lock_guard lock(mutex);
      if (!answers.emplace(response.sequence(), response).second) ++duplicates;
    }
  });
  for (uint64_t sequence = 1; sequence <= kRequests; ++sequence) {
    if (!stream->Write(stream_request(sequence))) break;
  }
  // The stream stayed open after the errors: a request written after them is answered.
  bool last_answered = wait_for(
      [&] {
        std::lock_guard lock(mutex);
        return answers.count(kRequests) > 0;
      },
      20s);
  stream->WritesDone();
  reader.join();
  auto status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(last_answered);
  EXPECT_EQ(duplicates, 0u);
  ASSERT_EQ(answers.size(), kRequests);

  const auto& too_large = answers[kTooLarge];
  EXPECT_EQ(too_large.error_code(), static_cast<int32_t>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_NE(too_large.error_message().find("max_record_bytes=1000"), std::string::npos)
      << too_large.error_message();
  EXPECT_EQ(too_large.appends_size(), 0);
  EXPECT_EQ(answers[kEmpty].error_code(), static_cast<int32_t>(grpc::StatusCode::INVALID_ARGUMENT));

  // Every other request got one append on its partition, and offsets grow with sequence.
  std::map<uint32_t, int64_t> last_offset;
  for (const auto& [sequence, answer] : answers) {
    if (sequence == kTooLarge || sequence == kEmpty) continue;
    ASSERT_EQ(answer.error_code(), 0) << sequence << ": " << answer.error_message();
    ASSERT_EQ(answer.appends_size(), 1) << sequence;
    const auto& append = answer.appends(0);
    EXPECT_EQ(append.partition(), sequence % 2);
    EXPECT_EQ(append.count(), 1u);
    auto& last = last_offset.try_emplace(append.partition(), -1).first->second;
    EXPECT_EQ(static_cast<int64_t>(append.first_offset()), last + 1)
        << "sequence " << sequence << " on partition " << append.partition()
        << " out of request order";
    last = static_cast<int64_t>(append.first_offset());
  }

  // What a consumer reads per partition is the stream's order.
  auto request = consume_request("pipelined", "check");
  request.set_max(kRequests - 2);
  request.set_max_batch(500);
  Consumer consumer(client, request);
  auto records = consumer.read(kRequests - 2);
  ASSERT_EQ(records.size(), kRequests - 2);
  std::map<uint32_t, uint64_t> last_sequence;
  for (const auto& record : records) {
    uint64_t sequence = std::stoull(headers_of(record)["sequence"]);
    EXPECT_EQ(record.value(), "s" + std::to_string(sequence));
    EXPECT_GT(sequence, last_sequence[record.partition()]) << "partition " << record.partition();
    last_sequence[record.partition()] = sequence;
  }
  EXPECT_TRUE(consumer.finish().ok());
}

// A client that half-closes at once still gets every answer and an OK status.
TEST(BrokerProduceStreamTest, AnswersEveryRequestBeforeFinishing) {
  Telekernd daemon(broker_options());
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  auto stream_context = context(20s);
  auto stream = client.stub().ProduceStream(stream_context.get());
  for (uint64_t sequence = 1; sequence <= 50; ++sequence) {
    bv1::ProduceRequest request;
    request.set_topic("half-closed");
    request.set_sequence(sequence);
    request.set_key("k");
    request.set_value("v" + std::to_string(sequence));
    request.set_durability(bv1::DURABILITY_FSYNC);
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  std::set<uint64_t> sequences;
  bv1::ProduceResponse response;
  while (stream->Read(&response)) {
    EXPECT_EQ(response.error_code(), 0) << response.error_message();
    sequences.insert(response.sequence());
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(sequences.size(), 50u);
  uint64_t total = 0;
  auto description = client.describe("half-closed");
  for (const auto& partition : description.partitions()) total += partition.end_offset();
  EXPECT_EQ(total, 50u);
}

// A batch message (what a proxy sends once the broker says it accepts them):
// its requests are appended in order and answered together, in one message
// whose `batch` keeps their order, each with its own sequence and error; the
// stream goes on. A unary Produce refuses a batch rather than dropping it.
TEST(BrokerProduceStreamTest, BatchMessagesAreAppendedInOrderAndAnsweredInOneMessage) {
  Telekernd daemon(broker_options("    max_record_bytes: 1000\n"));
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  Client client(daemon);
  ASSERT_TRUE(client.create("batched", 2).ok());
  auto one = [](uint64_t sequence, uint32_t partition, std::vector<std::string> values,
                bv1::Durability durability = bv1::DURABILITY_NONE) {
    bv1::ProduceRequest request;
    request.set_topic("batched");
    request.set_sequence(sequence);
    request.set_partition(partition);
    request.set_durability(durability);
    for (auto& value : values) request.add_records()->set_value(value);
    return request;
  };
  auto stream_context = context(20s);
  auto stream = client.stub().ProduceStream(stream_context.get());

  ASSERT_TRUE(stream->Write(one(1, 0, {"a"})));
  bv1::ProduceResponse answer;
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.sequence(), 1u);
  EXPECT_TRUE(answer.accepts_batch());
  EXPECT_EQ(answer.batch_size(), 0);

  // The FSYNC request finishes in the group commit, after the NONE ones
  // behind it: the answer waits for it.
  bv1::ProduceRequest batch;
  *batch.add_batch() = one(10, 0, {"b", "c"}, bv1::DURABILITY_FSYNC);
  *batch.add_batch() = one(11, 1, {"d"});
  *batch.add_batch() = one(12, 1, {std::string(2000, 'x')});  // over max_record_bytes
  *batch.add_batch() = one(13, 0, {"e"});
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_TRUE(stream->Read(&answer));
  ASSERT_EQ(answer.batch_size(), 4) << answer.ShortDebugString();
  std::vector<uint64_t> sequences;
  for (const auto& entry : answer.batch()) sequences.push_back(entry.sequence());
  EXPECT_EQ(sequences, (std::vector<uint64_t>{10, 11, 12, 13}));
  auto append_of = [&](int index) {
    const auto& entry = answer.batch(index);
    EXPECT_EQ(entry.error_code(), 0) << entry.error_message();
    EXPECT_EQ(entry.appends_size(), 1);
    return entry.appends_size() == 1 ? entry.appends(0) : bv1::PartitionAppend();
  };
  EXPECT_EQ(append_of(0).first_offset(), 1u);
  EXPECT_EQ(append_of(0).count(), 2u);
  EXPECT_EQ(append_of(1).partition(), 1u);
  EXPECT_EQ(append_of(1).first_offset(), 0u);
  EXPECT_EQ(answer.batch(2).error_code(),
            static_cast<int32_t>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_NE(answer.batch(2).error_message().find("max_record_bytes"), std::string::npos);
  EXPECT_EQ(append_of(3).first_offset(), 3u);

  ASSERT_TRUE(stream->Write(one(20, 1, {"f"})));
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.sequence(), 20u);
  ASSERT_EQ(answer.appends_size(), 1);
  EXPECT_EQ(answer.appends(0).first_offset(), 1u);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&answer));
  EXPECT_TRUE(stream->Finish().ok());

  bv1::ProduceResponse refused;
  auto status = client.stub().Produce(context().get(), batch, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("ProduceStream"), std::string::npos)
      << status.error_message();

  // Partition 0 holds the requests' records in their order.
  auto request = consume_request("batched", "check");
  request.set_max(6);
  Consumer consumer(client, request);
  std::map<uint32_t, std::string> values;
  for (const auto& record : consumer.read(6)) values[record.partition()] += record.value();
  EXPECT_EQ(values[0], "abce");
  EXPECT_EQ(values[1], "df");
  EXPECT_TRUE(consumer.finish().ok());
}

}  // namespace
}  // namespace telekern::testing
