// MetrANOVA's processors: the stardust-style documents they take
// (start/end/meta/values/policy) and the columns they fill.
#include <algorithm>
#include <array>
#include <charconv>

#include "mapped_processor.h"
#include "tables.h"
#include "telekern/strings.h"

namespace telekern::etl {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr std::array<const char*, 8> kTrafficValues = {"in_bits",     "in_pkts",     "in_errors",
                                                       "in_discards", "out_bits",    "out_pkts",
                                                       "out_errors",  "out_discards"};

// meta.name, or the part after "::" of meta.id ("<device>::<name>").
std::optional<std::string> interface_name(const element& document) {
  if (auto name = find(document, "/meta/name"); name && name->is_string())
    return std::string(name->get_string().value_unsafe());
  auto id = find(document, "/meta/id");
  if (!id || !id->is_string()) return std::nullopt;
  std::string_view text = id->get_string().value_unsafe();
  size_t at = text.find("::");
  if (at == std::string_view::npos) return std::nullopt;
  return std::string(text.substr(at + 2));
}

// Columns every interface table shares (start_ts, policy, id, ref, device, name, collector_id).
class InterfaceProcessor : public MappedProcessor {
 protected:
  void map_header() {
    map("start_ts", "start");
    map("policy_originator", "policy.originator");
    map("policy_level", "policy.level");
    map("policy_scopes", "policy.scopes", "[]");
    map("id", "meta.id");
    map("device", "meta.device");
    require("start");
    require("meta.id");
    require("meta.device");
    known("meta.name");
    known("meta.sensor_id");
  }

  // The header columns that need code: name, collector_id, ref.
  absl::Status header(const element& document, BuildContext& context, Row& row) const {
    auto name = interface_name(document);
    if (!name)
      return absl::FailedPreconditionError(
          "missing required field /meta/name and /meta/id has no <device>::<name> form");
    put_string("name", *name, row);
    if (auto sensor = find(document, "/meta/sensor_id")) {
      element value = *sensor;
      if (value.type() == element_type::ARRAY) {
        auto first = value.at(0);
        if (first.error()) {
          put_value("collector_id", Value::null(), row);
          return absl::OkStatus();
        }
        value = first.value_unsafe();
      }
      if (auto status = put(value, "collector_id", context, row); !status.ok()) return status;
    } else {
      put_value("collector_id", Value::null(), row);
    }
    if (schema_.column("ref")) {
      std::optional<std::string> ref;
      auto id = find(document, "/meta/id");
      if (context.refs && id && id->is_string())
        ref = context.refs->lookup("meta_if", id->get_string().value_unsafe());
      if (ref)
        put_string("ref", *ref, row);
      else
        put_value("ref", Value::null(), row);
    }
    return absl::OkStatus();
  }
};

class InterfaceTrafficProcessor final : public InterfaceProcessor {
 public:
  explicit InterfaceTrafficProcessor(const BuiltinSettings& settings) {
    schema_ = if_traffic_schema();
    schema_.name = settings.if_traffic_table;
    description_ = {"InterfaceTrafficProcessor",
                    "Interface counters (bits, packets, errors, discards in and out)",
                    "documents with values.<in|out>_<bits|pkts|errors|discards>.val", schema_.name,
                    Store::kClickHouse};
    map_header();
    for (const char* field : kTrafficValues) map(field, str_cat("values.", field, ".val"));
    own_scope("values");
  }

  bool match(const element& document) const override {
    for (const char* field : kTrafficValues) {
      if (find(document, str_cat("/values/", field, "/val"))) return true;
    }
    return false;
  }

  absl::Status build(const element& document, const Message&, BuildContext& context,
                     std::vector<Row>& out) const override {
    if (auto status = check_required(document); !status.ok()) return status;
    if (auto status = check_unknown(document, context); !status.ok()) return status;
    Row row = new_row();
    if (auto status = fill(document, context, row); !status.ok()) return status;
    if (auto status = header(document, context, row); !status.ok()) return status;
    out.push_back(std::move(row));
    return absl::OkStatus();
  }
};

// One row per values.queue<N> with N in the configured range.
class QueueProcessor : public InterfaceProcessor {
 public:
  QueueProcessor(TableSchema schema, std::string name, bool service, QueueRange range)
      : service_(service), range_(range) {
    schema_ = std::move(schema);
    description_ = {
        std::move(name),
        service ? "Per-queue SAP counters of service interfaces" : "Per-queue port counters",
        str_cat("documents ", service ? "with" : "without",
                " meta.service_type and with values.queue<N> (N in ", range.min, "..", range.max,
                ")"),
        schema_.name, Store::kClickHouse};
    map_header();
    known("meta.service_type");
    for (const auto& column : schema_.columns) {
      if (column.name.rfind("in_", 0) == 0 || column.name.rfind("out_", 0) == 0 ||
          column.name.rfind("qos_", 0) == 0)
        queue_fields_.push_back(column.name);
    }
  }

  bool match(const element& document) const override {
    if (find(document, "/meta/service_type").has_value() != service_) return false;
    auto values = find(document, "/values");
    if (!values || values->type() != element_type::OBJECT) return false;
    for (int i = 1; i <= range_.max; ++i)
      if (find(*values, str_cat("/queue", i))) return true;
    return false;
  }

  absl::Status build(const element& document, const Message&, BuildContext& context,
                     std::vector<Row>& out) const override {
    if (auto status = check_required(document); !status.ok()) return status;
    auto values = find(document, "/values");
    std::optional<Found> found;
    for (int i = range_.min; i <= range_.max; ++i) {
      auto queue = values ? find(*values, str_cat("/queue", i)) : std::nullopt;
      if (!queue) continue;
      if (!found) found = gather(document);
      Row row = new_row();
      if (auto status = fill(*found, context, row); !status.ok()) return status;
      if (auto status = header(document, context, row); !status.ok()) return status;
      put_value("queue_num", Value::signed_integer(i), row);
      for (const auto& field : queue_fields_) {
        auto value = find(*queue, str_cat("/", field, "/val"));
        if (!value) {
          put_value(field, Value::null(), row);
          continue;
        }
        if (auto status = put(*value, field, context, row); !status.ok()) return status;
      }
      if (queue->type() == element_type::OBJECT) {
        for (auto [key, child] : object_of(queue->get_object())) {
          (void)child;
          if (std::find(queue_fields_.begin(), queue_fields_.end(), key) != queue_fields_.end())
            continue;
          if (context.unknown == UnknownFields::kStrict)
            return absl::InvalidArgumentError(str_cat("unknown field /values/queue", i, "/", key));
          if (context.count) context.count("unknown_field_skipped");
        }
      }
      out.push_back(std::move(row));
    }
    return absl::OkStatus();
  }

 private:
  bool service_;
  QueueRange range_;
  std::vector<std::string> queue_fields_;
};

// Refs of a list of ids (e.g. ESnet service prefix groups), null for unknown ones.
Value ref_list(const std::optional<element>& list, std::string_view table, RefLookup* refs,
               Row& row) {
  size_t begin = row.begin_array();
  if (list && list->type() == element_type::ARRAY) {
    for (element item : array_of(list->get_array())) {
      std::optional<std::string> ref;
      if (refs && item.is_string()) ref = refs->lookup(table, item.get_string().value_unsafe());
      row.push_item(ref ? row.string(*ref) : Value::null());
    }
  }
  return row.end_array(begin);
}

class FlowProcessor final : public MappedProcessor {
 public:
  explicit FlowProcessor(const BuiltinSettings& settings) {
    schema_ = flow_edge_schema();
    schema_.name = settings.flow_table;
    description_ = {"FlowProcessor",
                    "Network flow records: endpoints, ASNs, BGP, MPLS, geography, volumes",
                    "documents with meta.src_ip and meta.dst_ip", schema_.name, Store::kClickHouse};
    static const std::vector<std::pair<const char*, const char*>> kColumns = {
        {"start_ts", "start"},
        {"end_ts", "end"},
        {"policy_originator", "policy.originator"},
        {"policy_level", "policy.level"},
        {"app_name", "meta.app_name"},
        {"bgp_as_path_padded_len", "meta.bgp.as_path_padded_len"},
        {"bgp_local_pref", "meta.bgp.local_pref"},
        {"bgp_med", "meta.bgp.med"},
        {"bgp_next_hop", "meta.bgp.next_hop"},
        {"bgp_peer_as_dst", "meta.bgp.peer_as_dst"},
        {"bgp_peer_as_dst_name", "meta.bgp.peer_as_dst_name"},
        {"bgp_peer_as_dst_org", "meta.bgp.peer_as_dst_org"},
        {"collector_id", "meta.sensor_id"},
        {"country_scope", "meta.country_scope"},
        {"device_ip", "meta.router.ip"},
        {"device_name", "meta.router.name"},
        {"device_loc_name", "meta.device_info.loc_name"},
        {"device_loc_type", "meta.device_info.loc_type"},
        {"device_loc_lat", "meta.device_info.location.lat"},
        {"device_loc_lon", "meta.device_info.location.lon"},
        {"device_manufac", "meta.device_info.manufacturer"},
        {"device_model", "meta.device_info.model"},
        {"device_network", "meta.device_info.network"},
        {"device_os", "meta.device_info.os"},
        {"device_role", "meta.device_info.role"},
        {"device_state", "meta.device_info.state"},
        {"dscp", "meta.dscp"},
        {"dst_as_name", "meta.dst_as_name"},
        {"dst_asn", "meta.dst_asn"},
        {"dst_continent", "meta.dst_continent"},
        {"dst_country_name", "meta.dst_country_name"},
        {"dst_ip", "meta.dst_ip"},
        {"dst_loc_lat", "meta.dst_location.lat"},
        {"dst_loc_lon", "meta.dst_location.lon"},
        {"dst_org", "meta.dst_organization"},
        {"dst_port", "meta.dst_port"},
        {"dst_pref_loc_lat", "meta.dst_preferred_location.lat"},
        {"dst_pref_loc_lon", "meta.dst_preferred_location.lon"},
        {"dst_pref_org", "meta.dst_preferred_org"},
        {"dst_pub_asn", "meta.dst_pub_asn"},
        {"dst_region_iso_code", "meta.dst_region_iso_code"},
        {"dst_region_name", "meta.dst_region_name"},
        {"flow_type", "meta.flow_type"},
        {"ip_tos", "meta.ip_tos"},
        {"ip_version", "meta.ip_version"},
        {"ipv6_flow_label", "meta.ipv6.flow_label"},
        {"mpls_bottom_label", "meta.mpls.bottom_label"},
        {"mpls_pw_id", "meta.mpls.pw_id"},
        {"mpls_stack_depth", "meta.mpls.stack_depth"},
        {"mpls_top_label", "meta.mpls.top_label"},
        {"mpls_top_label_ip", "meta.mpls.top_label_ip"},
        {"mpls_top_label_type", "meta.mpls.top_label_type"},
        {"mpls_vpn_rd", "meta.mpls.vpn_rd"},
        {"protocol", "meta.protocol"},
        {"src_asn", "meta.src_asn"},
        {"src_continent", "meta.src_continent"},
        {"src_country_name", "meta.src_country_name"},
        {"src_ip", "meta.src_ip"},
        {"src_loc_lat", "meta.src_location.latitude"},
        {"src_loc_lon", "meta.src_location.longitude"},
        {"src_org", "meta.src_organization"},
        {"src_port", "meta.src_port"},
        {"src_pref_loc_lat", "meta.src_preferred_location.lat"},
        {"src_pref_loc_lon", "meta.src_preferred_location.lon"},
        {"src_pref_org", "meta.src_preferred_org"},
        {"src_pub_asn", "meta.src_pub_asn"},
        {"src_region_iso_code", "meta.src_region_iso_code"},
        {"src_region_name", "meta.src_region_name"},
        {"traffic_class", "meta.traffic_class"},
        {"vrf_egress_id", "meta.vrf.egress_id"},
        {"vrf_ingress_id", "meta.vrf.ingress_id"},
        {"bits_per_sec", "values.bits_per_second"},
        {"duration", "values.duration"},
        {"max_pkt_len", "values.max_packet_len"},
        {"max_ttl", "values.max_ttl"},
        {"min_pkt_len", "values.min_packet_len"},
        {"min_ttl", "values.min_ttl"},
        {"num_bits", "values.num_bits"},
        {"num_pkts", "values.num_packets"},
        {"pkts_per_sec", "values.packets_per_second"}};
    for (const auto& [column, path] : kColumns) map(column, path);
    map("policy_scopes", "policy.scopes", "[]");
    map("app_port", "meta.app_port", "0");
    map("bgp_as_path", "meta.bgp.as_path", "[]");
    map("bgp_as_path_name", "meta.bgp.as_path_name", "[]");
    map("bgp_as_path_org", "meta.bgp.as_path_org", "[]");
    map("bgp_comms", "meta.bgp.comms", "[]");
    map("bgp_ecomms", "meta.bgp.ecomms", "[]");
    map("bgp_lcomms", "meta.bgp.lcomms", "[]");
    map("mpls_labels", "meta.mpls.labels", "[]");
    map("src_as_name", "meta.src_as_name", "\"unknown\"");
    for (const char* path : {"start", "end", "meta.dst_asn", "meta.dst_ip", "meta.dst_port",
                             "meta.src_asn", "meta.src_ip", "meta.src_port"})
      require(path);
    known("meta.iface_in.id");
    known("meta.iface_out.id");
    known("meta.esdb.dst.service.prefix_group_name");
    known("meta.esdb.src.service.prefix_group_name");
    own_scope("values");
    // The inputs of the code-filled columns, found in the same walk as the mapped ones.
    for (int i = 0; i < kMaxListed; ++i) {
      as_hop_padding_[i] = watch(str_cat("/meta/bgp/as_hop", i, "_padding"));
      mpls_exp_[i] = watch(str_cat("/meta/mpls/exp", i));
    }
    dst_prefix_groups_ = watch("meta.esdb.dst.service.prefix_group_name");
    src_prefix_groups_ = watch("meta.esdb.src.service.prefix_group_name");
    iface_in_ = watch("meta.iface_in.id");
    iface_out_ = watch("meta.iface_out.id");
  }

  bool match(const element& document) const override {
    return find(document, "/meta/src_ip") && find(document, "/meta/dst_ip");
  }

  absl::Status build(const element& document, const Message&, BuildContext& context,
                     std::vector<Row>& out) const override {
    Found found = gather(document);
    if (auto status = check_required(document, found); !status.ok()) return status;
    if (auto status = check_unknown(document, context); !status.ok()) return status;
    Row row = new_row();
    if (auto status = fill(found, context, row); !status.ok()) return status;
    put_value("bgp_as_path_padding", numbered_list(found, as_hop_padding_, row), row);
    put_value("mpls_exp", numbered_list(found, mpls_exp_, row), row);
    put_value("dst_esdb_ipsvc_ref",
              ref_list(found.watched(dst_prefix_groups_), "meta_esdb_ipsvc", context.refs, row),
              row);
    put_value("src_esdb_ipsvc_ref",
              ref_list(found.watched(src_prefix_groups_), "meta_esdb_ipsvc", context.refs, row),
              row);
    put_value("ifin_ref", interface_ref(found.watched(iface_in_), context, row), row);
    put_value("ifout_ref", interface_ref(found.watched(iface_out_), context, row), row);
    put_value("dst_scireg_ref", Value::null(), row);
    put_value("src_scireg_ref", Value::null(), row);
    out.push_back(std::move(row));
    return absl::OkStatus();
  }

 private:
  static constexpr int kMaxListed = 20;
  // The integers at the watched pointers <prefix>0<suffix>, <prefix>1<suffix>, ...,
  // up to the first gap (at most 20).
  static Value numbered_list(const Found& found, const std::array<size_t, kMaxListed>& slots,
                             Row& row) {
    size_t begin = row.begin_array();
    for (size_t slot : slots) {
      const auto& value = found.watched(slot);
      if (!value) break;
      long long number = 0;
      if (value->is_int64()) {
        number = value->get_int64().value_unsafe();
      } else if (value->is_string()) {
        std::string_view text = value->get_string().value_unsafe();
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (error != std::errc() || end != text.data() + text.size()) break;
      } else {
        break;
      }
      row.push_item(Value::signed_integer(number));
    }
    return row.end_array(begin);
  }

  static Value interface_ref(const std::optional<element>& id, BuildContext& context, Row& row) {
    if (!context.refs || !id || !id->is_string()) return Value::null();
    auto ref = context.refs->lookup("meta_if", id->get_string().value_unsafe());
    return ref ? row.string(*ref) : Value::null();
  }

  std::array<size_t, kMaxListed> as_hop_padding_{};
  std::array<size_t, kMaxListed> mpls_exp_{};
  size_t dst_prefix_groups_ = 0;
  size_t src_prefix_groups_ = 0;
  size_t iface_in_ = 0;
  size_t iface_out_ = 0;
};

class RawKafkaProcessor final : public MappedProcessor {
 public:
  explicit RawKafkaProcessor(const BuiltinSettings& settings) {
    schema_ = kafka_messages_schema();
    schema_.name = settings.raw_kafka_table;
    description_ = {"RawKafkaProcessor",
                    "Every message as received, with topic, partition, offset and timestamp",
                    "every message", schema_.name, Store::kClickHouse};
  }
  bool match(const element&) const override { return true; }
  absl::Status build(const element&, const Message& message, BuildContext& context,
                     std::vector<Row>& out) const override {
    out.push_back(raw_row(message, context));
    return absl::OkStatus();
  }
  Row raw_row(const Message& message, BuildContext& context) const {
    Row row = new_row();
    put_string("topic", message.topic, row);
    put_value("partition", Value::signed_integer(std::max(message.partition, 0)), row);
    put_value("offset", Value::signed_integer(std::max<int64_t>(message.offset, 0)), row);
    if (message.key.empty())
      put_value("key", Value::null(), row);
    else
      put_string("key", message.key, row);
    put_string("value", message.value, row);
    if (message.timestamp.time_since_epoch().count() != 0) {
      double seconds = std::chrono::duration<double>(message.timestamp.time_since_epoch()).count();
      put_value("timestamp", Value::datetime(seconds, context.profile.datetime64), row);
    }
    return row;
  }
};

// The interface metadata of each document, as a Redis hash <table>:<meta.id>.
class RedisInterfaceMetadataProcessor final : public MappedProcessor {
 public:
  explicit RedisInterfaceMetadataProcessor(const BuiltinSettings& settings)
      : expires_(settings.redis_if_metadata_expires) {
    description_ = {"InterfaceMetadataProcessor",
                    "Interface metadata (names, addresses, peers, remote ends) cached in Redis "
                    "hashes with expiry",
                    "documents with any interface metadata field (meta.id, meta.name, ...)",
                    settings.redis_if_metadata_table, Store::kRedis};
    static const std::vector<std::pair<const char*, const char*>> kFields = {
        {"id", "meta.id"},
        {"device", "meta.device"},
        {"description", "meta.description"},
        {"ifindex", "meta.if_index"},
        {"ipv4", "meta.ipv4"},
        {"ipv6", "meta.ipv6"},
        {"netflow_index", "meta.netflow_index"},
        {"peer_asn", "meta.peer.asn"},
        {"peer_ipv4", "meta.peer.ipv4"},
        {"peer_ipv6", "meta.peer.ipv6"},
        {"port_name", "meta.port_name"},
        {"remote_device", "meta.remote.device"},
        {"remote_full_name", "meta.remote.full_name"},
        {"remote_id", "meta.remote.id"},
        {"remote_lldp_device", "meta.remote.lldp_device"},
        {"remote_lldp_port", "meta.remote.lldp_port"},
        {"remote_loc_name", "meta.remote.loc_name"},
        {"remote_loc_type", "meta.remote.loc_type"},
        {"remote_loc_lat", "meta.remote.location.lat"},
        {"remote_loc_lon", "meta.remote.location.lon"},
        {"remote_manufacturer", "meta.remote.manufacturer"},
        {"remote_model", "meta.remote.model"},
        {"remote_network", "meta.remote.network"},
        {"remote_os", "meta.remote.os"},
        {"remote_port", "meta.remote.port"},
        {"remote_role", "meta.remote.role"},
        {"remote_short_name", "meta.remote.short_name"},
        {"remote_state", "meta.remote.state"},
        {"site", "meta.site"},
        {"speed", "meta.speed"},
        {"visibility", "meta.visibility"},
        {"vrtr_ifglobalindex", "meta.vrtr_ifglobalindex"},
        {"vrtr_ifindex", "meta.vrtr_ifindex"},
        {"vrtr_name", "meta.vrtr_name"}};
    for (const auto& [field, path] : kFields) map(field, path);
    mappings_.push_back({"name", "", "", ColumnType::parse("Nullable(String)")});
    require("meta.id");
    require("meta.device");
  }

  bool match(const element& document) const override {
    for (const auto& mapping : mappings_)
      if (!mapping.pointer.empty() && find(document, mapping.pointer)) return true;
    return find(document, "/meta/name").has_value() ||
           find(document, "/meta/intercloud").has_value();
  }

  absl::Status build(const element& document, const Message&, BuildContext& context,
                     std::vector<Row>& out) const override {
    if (auto status = check_required(document); !status.ok()) return status;
    auto name = interface_name(document);
    if (!name)
      return absl::FailedPreconditionError(
          "missing required field /meta/name and /meta/id has no <device>::<name> form");
    Row row = new_row();
    auto id = find(document, "/meta/id");
    if (id && id->is_string()) row.key = std::string(id->get_string().value_unsafe());
    if (row.key.empty()) return absl::FailedPreconditionError("meta.id is not a string");
    row.expires_seconds = expires_;
    if (auto status = fill(document, context, row); !status.ok()) return status;
    put_string("name", *name, row);
    out.push_back(std::move(row));
    return absl::OkStatus();
  }

 private:
  int64_t expires_;
};

}  // namespace

std::vector<std::string> builtin_processor_names() {
  return {"FlowProcessor",
          "InterfaceTrafficProcessor",
          "InterfaceSAPQueueProcessor",
          "InterfacePortQueueProcessor",
          "InterfaceMetadataProcessor",
          "RawKafkaProcessor"};
}

absl::StatusOr<std::unique_ptr<Processor>> make_builtin_processor(const std::string& name,
                                                                  const BuiltinSettings& settings) {
  std::string base = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  if (base == "FlowProcessor") return std::make_unique<FlowProcessor>(settings);
  if (base == "InterfaceTrafficProcessor")
    return std::make_unique<InterfaceTrafficProcessor>(settings);
  if (base == "InterfaceSAPQueueProcessor") {
    auto schema = if_sap_queue_schema();
    schema.name = settings.if_sap_queue_table;
    return std::make_unique<QueueProcessor>(std::move(schema), "InterfaceSAPQueueProcessor", true,
                                            settings.sap_queues);
  }
  if (base == "InterfacePortQueueProcessor") {
    auto schema = if_port_queue_schema();
    schema.name = settings.if_port_queue_table;
    return std::make_unique<QueueProcessor>(std::move(schema), "InterfacePortQueueProcessor", false,
                                            settings.port_queues);
  }
  if (base == "InterfaceMetadataProcessor")
    return std::make_unique<RedisInterfaceMetadataProcessor>(settings);
  if (base == "RawKafkaProcessor") return std::make_unique<RawKafkaProcessor>(settings);
  std::string known;
  for (const auto& candidate : builtin_processor_names())
    known += (known.empty() ? "" : ", ") + candidate;
  return absl::NotFoundError(str_cat("no processor '", name, "'; built-in processors are ", known,
                                     ", or define one in YAML under processors:"));
}

}  // namespace telekern::etl
