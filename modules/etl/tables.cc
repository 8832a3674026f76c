// The ClickHouse tables of the MetrANOVA pipeline (columns, declared types,
// defaults, codecs), from shared/reference/metranova-columns.json. Older
// servers get the fallback types of ColumnType::render.
#include "tables.h"

namespace telekern::etl {

TableSchema flow_edge_schema() {
  TableSchema schema;
  schema.name = "flow_edge";
  schema.order_by = "(`src_asn`, `dst_asn`, `src_ip`, `dst_ip`, `start_ts`)";
  schema.partition_by = "toYYYYMMDD(`start_ts`)";
  schema.ttl = "start_ts + INTERVAL 7 DAY";
  schema.columns = {
      {"start_ts", "DateTime64(3, 'UTC')", "", ""},
      {"end_ts", "DateTime64(3, 'UTC')", "", ""},
      {"insert_ts", "DateTime64(3, 'UTC')", "now64()", ""},
      {"policy_originator", "LowCardinality(Nullable(String))", "", ""},
      {"policy_level", "LowCardinality(Nullable(String))", "", ""},
      {"policy_scopes", "Array(LowCardinality(String))", "", ""},
      {"app_name", "LowCardinality(Nullable(String))", "", ""},
      {"app_port", "Nullable(UInt16)", "", ""},
      {"bgp_as_path", "Array(Nullable(UInt32))", "", ""},
      {"bgp_as_path_name", "Array(Nullable(String))", "", ""},
      {"bgp_as_path_org", "Array(Nullable(String))", "", ""},
      {"bgp_as_path_padding", "Array(Nullable(UInt32))", "", ""},
      {"bgp_as_path_padded_len", "Nullable(UInt32)", "", ""},
      {"bgp_comms", "Array(LowCardinality(Nullable(String)))", "", ""},
      {"bgp_ecomms", "Array(LowCardinality(Nullable(String)))", "", ""},
      {"bgp_lcomms", "Array(LowCardinality(Nullable(String)))", "", ""},
      {"bgp_local_pref", "Nullable(UInt32)", "", ""},
      {"bgp_med", "Nullable(UInt32)", "", ""},
      {"bgp_next_hop", "Nullable(IPv6)", "", ""},
      {"bgp_peer_as_dst", "Nullable(UInt32)", "", ""},
      {"bgp_peer_as_dst_name", "LowCardinality(Nullable(String))", "", ""},
      {"bgp_peer_as_dst_org", "LowCardinality(Nullable(String))", "", ""},
      {"collector_id", "LowCardinality(Nullable(String))", "", ""},
      {"country_scope", "LowCardinality(Nullable(String))", "", ""},
      {"device_ip", "Nullable(IPv6)", "", ""},
      {"device_name", "LowCardinality(Nullable(String))", "", ""},
      {"device_loc_name", "LowCardinality(Nullable(String))", "", ""},
      {"device_loc_type", "LowCardinality(Nullable(String))", "", ""},
      {"device_loc_lat", "Nullable(Decimal(8, 6))", "", ""},
      {"device_loc_lon", "Nullable(Decimal(9, 6))", "", ""},
      {"device_manufac", "LowCardinality(Nullable(String))", "", ""},
      {"device_model", "LowCardinality(Nullable(String))", "", ""},
      {"device_network", "LowCardinality(Nullable(String))", "", ""},
      {"device_os", "LowCardinality(Nullable(String))", "", ""},
      {"device_role", "LowCardinality(Nullable(String))", "", ""},
      {"device_state", "LowCardinality(Nullable(String))", "", ""},
      {"dscp", "Nullable(UInt32)", "", ""},
      {"dst_as_name", "LowCardinality(Nullable(String))", "", ""},
      {"dst_asn", "UInt32", "", ""},
      {"dst_continent", "LowCardinality(Nullable(String))", "", ""},
      {"dst_country_name", "LowCardinality(Nullable(String))", "", ""},
      {"dst_esdb_ipsvc_ref", "Array(Nullable(String))", "", ""},
      {"dst_ip", "IPv6", "", ""},
      {"dst_loc_lat", "Nullable(Decimal(8, 6))", "", ""},
      {"dst_loc_lon", "Nullable(Decimal(9, 6))", "", ""},
      {"dst_org", "LowCardinality(Nullable(String))", "", ""},
      {"dst_port", "UInt16", "", ""},
      {"dst_pref_loc_lat", "Nullable(Decimal(8, 6))", "", ""},
      {"dst_pref_loc_lon", "Nullable(Decimal(9, 6))", "", ""},
      {"dst_pref_org", "LowCardinality(Nullable(String))", "", ""},
      {"dst_pub_asn", "Nullable(UInt32)", "", ""},
      {"dst_region_iso_code", "LowCardinality(Nullable(String))", "", ""},
      {"dst_region_name", "LowCardinality(Nullable(String))", "", ""},
      {"dst_scireg_ref", "Nullable(String)", "", ""},
      {"flow_type", "LowCardinality(Nullable(String))", "", ""},
      {"ifin_ref", "Nullable(String)", "", ""},
      {"ifout_ref", "Nullable(String)", "", ""},
      {"ip_tos", "Nullable(UInt8)", "", ""},
      {"ip_version", "Nullable(UInt8)", "", ""},
      {"ipv6_flow_label", "Nullable(UInt32)", "", ""},
      {"mpls_bottom_label", "Nullable(UInt32)", "", ""},
      {"mpls_exp", "Array(Nullable(UInt8))", "", ""},
      {"mpls_labels", "Array(Nullable(UInt32))", "", ""},
      {"mpls_pw_id", "Nullable(UInt32)", "", ""},
      {"mpls_stack_depth", "Nullable(UInt32)", "", ""},
      {"mpls_top_label", "Nullable(UInt32)", "", ""},
      {"mpls_top_label_ip", "Nullable(IPv6)", "", ""},
      {"mpls_top_label_type", "Nullable(UInt32)", "", ""},
      {"mpls_vpn_rd", "LowCardinality(Nullable(String))", "", ""},
      {"protocol", "LowCardinality(Nullable(String))", "", ""},
      {"src_as_name", "LowCardinality(Nullable(String))", "", ""},
      {"src_asn", "UInt32", "", ""},
      {"src_continent", "LowCardinality(Nullable(String))", "", ""},
      {"src_country_name", "LowCardinality(Nullable(String))", "", ""},
      {"src_esdb_ipsvc_ref", "Array(Nullable(String))", "", ""},
      {"src_ip", "IPv6", "", ""},
      {"src_loc_lat", "Nullable(Decimal(8, 6))", "", ""},
      {"src_loc_lon", "Nullable(Decimal(9, 6))", "", ""},
      {"src_org", "LowCardinality(Nullable(String))", "", ""},
      {"src_port", "UInt16", "", ""},
      {"src_pref_loc_lat", "Nullable(Decimal(8, 6))", "", ""},
      {"src_pref_loc_lon", "Nullable(Decimal(9, 6))", "", ""},
      {"src_pref_org", "LowCardinality(Nullable(String))", "", ""},
      {"src_pub_asn", "Nullable(UInt32)", "", ""},
      {"src_region_iso_code", "LowCardinality(Nullable(String))", "", ""},
      {"src_region_name", "LowCardinality(Nullable(String))", "", ""},
      {"src_scireg_ref", "Nullable(String)", "", ""},
      {"traffic_class", "LowCardinality(Nullable(String))", "", ""},
      {"vrf_egress_id", "Nullable(UInt32)", "", ""},
      {"vrf_ingress_id", "Nullable(UInt32)", "", ""},
      {"bits_per_sec", "Nullable(Float64)", "", ""},
      {"duration", "Nullable(Float64)", "", ""},
      {"max_pkt_len", "Nullable(Float64)", "", ""},
      {"max_ttl", "Nullable(Float64)", "", ""},
      {"min_pkt_len", "Nullable(Float64)", "", ""},
      {"min_ttl", "Nullable(Float64)", "", ""},
      {"num_bits", "Nullable(Float64)", "", ""},
      {"num_pkts", "Nullable(Float64)", "", ""},
      {"pkts_per_sec", "Nullable(Float64)", "", ""},
  };
  return schema;
}

TableSchema if_traffic_schema() {
  TableSchema schema;
  schema.name = "if_traffic";
  schema.order_by = "(`id`, `start_ts`)";
  schema.partition_by = "toYYYYMMDD(`start_ts`)";
  schema.ttl = "start_ts + INTERVAL 7 DAY";
  schema.columns = {
      {"start_ts", "DateTime64(3, 'UTC')", "", "Delta,ZSTD"},
      {"insert_ts", "DateTime64(3, 'UTC')", "now64()", "Delta,ZSTD"},
      {"policy_originator", "LowCardinality(Nullable(String))", "", ""},
      {"policy_level", "LowCardinality(Nullable(String))", "", ""},
      {"policy_scopes", "Array(LowCardinality(String))", "", ""},
      {"id", "LowCardinality(String)", "", ""},
      {"ref", "Nullable(String)", "", ""},
      {"device", "LowCardinality(String)", "", ""},
      {"name", "LowCardinality(String)", "", ""},
      {"collector_id", "LowCardinality(Nullable(String))", "", ""},
      {"in_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_errors", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_discards", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_errors", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_discards", "Nullable(UInt64)", "", "Delta,ZSTD"},
  };
  return schema;
}

TableSchema if_sap_queue_schema() {
  TableSchema schema;
  schema.name = "if_sap_queue";
  schema.order_by = "(`id`, `queue_num`, `start_ts`)";
  schema.partition_by = "toYYYYMMDD(`start_ts`)";
  schema.ttl = "start_ts + INTERVAL 7 DAY";
  schema.columns = {
      {"start_ts", "DateTime64(3, 'UTC')", "", "Delta,ZSTD"},
      {"insert_ts", "DateTime64(3, 'UTC')", "now64()", "Delta,ZSTD"},
      {"policy_originator", "LowCardinality(Nullable(String))", "", ""},
      {"policy_level", "LowCardinality(Nullable(String))", "", ""},
      {"policy_scopes", "Array(LowCardinality(String))", "", ""},
      {"id", "LowCardinality(String)", "", ""},
      {"ref", "Nullable(String)", "", ""},
      {"device", "LowCardinality(String)", "", ""},
      {"name", "LowCardinality(String)", "", ""},
      {"queue_num", "UInt8", "", ""},
      {"collector_id", "LowCardinality(Nullable(String))", "", ""},
      {"in_multipoint_inprofprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_inprofprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_outprofprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_outprofprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_combined_priority_offered_bits", "Nullable(UInt64)", "",
       "Delta,ZSTD"},
      {"in_multipoint_priority_combined_priority_offered_pkts", "Nullable(UInt64)", "",
       "Delta,ZSTD"},
      {"in_multipoint_priority_hiprio_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_hiprio_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_hiprio_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_hiprio_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_inprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_inprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_loprio_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_loprio_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_loprio_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_loprio_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_managed_priority_offered_bits", "Nullable(UInt64)", "",
       "Delta,ZSTD"},
      {"in_multipoint_priority_managed_priority_offered_pkts", "Nullable(UInt64)", "",
       "Delta,ZSTD"},
      {"in_multipoint_priority_outprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_priority_outprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_in_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_in_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_in_uncolor_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_in_uncolor_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_out_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_out_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_out_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_color_out_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_combined_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_combined_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_managed_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_managed_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_uncolor_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_multipoint_profile_uncolor_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_inprofprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_inprofprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_outprofprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_outprofprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_hiprio_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_hiprio_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_hiprio_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_hiprio_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_inprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_inprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_loprio_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_loprio_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_loprio_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_loprio_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_outprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_priority_outprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_in_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_in_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_in_uncolor_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_in_uncolor_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_out_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_out_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_out_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_color_out_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_uncolor_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_unicast_profile_uncolor_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv4_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv4_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv4_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv4_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv4_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv4_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv6_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv6_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv6_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv6_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv6_offered_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_v4_v6_ipv6_offered_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_inplus_profile_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_inplus_profile_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_inplus_profile_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_inplus_profile_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_exceed_profile_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_exceed_profile_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_exceed_profile_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_exceed_profile_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_adapted_admin_cbs", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_adapted_admin_mbs", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_depth", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_dest_card", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_dest_fp", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_dest_tap_offset", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_exceed_droptail", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_high_droptail", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_high_plus_droptail", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_low_droptail", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_operational_burst_fir", "Nullable(UInt64)", "",
       "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_operational_cir", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_operational_fir", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_operational_mbs", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_source_card", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_source_fp", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"qos_sap_in_queue_hardware_queue_source_tap_offset", "Nullable(UInt64)", "", "Delta,ZSTD"},
  };
  return schema;
}

TableSchema if_port_queue_schema() {
  TableSchema schema;
  schema.name = "if_port_queue";
  schema.order_by = "(`id`, `queue_num`, `start_ts`)";
  schema.partition_by = "toYYYYMMDD(`start_ts`)";
  schema.ttl = "start_ts + INTERVAL 7 DAY";
  schema.columns = {
      {"start_ts", "DateTime64(3, 'UTC')", "", "Delta,ZSTD"},
      {"insert_ts", "DateTime64(3, 'UTC')", "now64()", "Delta,ZSTD"},
      {"policy_originator", "LowCardinality(Nullable(String))", "", ""},
      {"policy_level", "LowCardinality(Nullable(String))", "", ""},
      {"policy_scopes", "Array(LowCardinality(String))", "", ""},
      {"id", "LowCardinality(String)", "", ""},
      {"ref", "Nullable(String)", "", ""},
      {"device", "LowCardinality(String)", "", ""},
      {"name", "LowCardinality(String)", "", ""},
      {"queue_num", "UInt8", "", ""},
      {"collector_id", "LowCardinality(Nullable(String))", "", ""},
      {"in_inprof_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_inprof_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_inprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_inprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_outprof_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_outprof_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_outprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"in_outprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_inprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_dropped_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_dropped_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_fwd_bits", "Nullable(UInt64)", "", "Delta,ZSTD"},
      {"out_outprof_fwd_pkts", "Nullable(UInt64)", "", "Delta,ZSTD"},
  };
  return schema;
}

TableSchema meta_if_schema() {
  TableSchema schema;
  schema.name = "meta_if";
  schema.order_by = "(`id`, `ref`)";
  schema.partition_by = "";
  schema.ttl = "";
  schema.engine = "ReplacingMergeTree";
  schema.columns = {
      {"ref", "String", "", ""},
      {"hash", "String", "", ""},
      {"insert_ts", "DateTime", "now()", ""},
      {"description", "Nullable(String)", "", ""},
      {"device", "LowCardinality(Nullable(String))", "", ""},
      {"id", "String", "", ""},
      {"ifindex", "Nullable(UInt32)", "", ""},
      {"edge", "Bool", "", ""},
      {"ipv4", "Nullable(IPv4)", "", ""},
      {"ipv6", "Nullable(IPv6)", "", ""},
      {"name", "Nullable(String)", "", ""},
      {"netflow_index", "Nullable(UInt32)", "", ""},
      {"peer_asn", "Nullable(UInt32)", "", ""},
      {"peer_ipv4", "Nullable(IPv4)", "", ""},
      {"peer_ipv6", "Nullable(IPv6)", "", ""},
      {"port_name", "Nullable(String)", "", ""},
      {"remote_device", "LowCardinality(Nullable(String))", "", ""},
      {"remote_full_name", "LowCardinality(Nullable(String))", "", ""},
      {"remote_id", "Nullable(String)", "", ""},
      {"remote_lldp_device", "LowCardinality(Nullable(String))", "", ""},
      {"remote_lldp_port", "LowCardinality(Nullable(String))", "", ""},
      {"remote_loc_name", "LowCardinality(Nullable(String))", "", ""},
      {"remote_loc_type", "LowCardinality(Nullable(String))", "", ""},
      {"remote_loc_lat", "Nullable(Decimal(8, 6))", "", ""},
      {"remote_loc_lon", "Nullable(Decimal(9, 6))", "", ""},
      {"remote_manufacturer", "LowCardinality(Nullable(String))", "", ""},
      {"remote_model", "LowCardinality(Nullable(String))", "", ""},
      {"remote_network", "LowCardinality(Nullable(String))", "", ""},
      {"remote_os", "LowCardinality(Nullable(String))", "", ""},
      {"remote_port", "LowCardinality(Nullable(String))", "", ""},
      {"remote_role", "LowCardinality(Nullable(String))", "", ""},
      {"remote_short_name", "LowCardinality(Nullable(String))", "", ""},
      {"remote_state", "LowCardinality(Nullable(String))", "", ""},
      {"site", "LowCardinality(Nullable(String))", "", ""},
      {"speed", "Nullable(UInt32)", "", ""},
      {"visibility", "LowCardinality(Nullable(String))", "", ""},
      {"vrtr_ifglobalindex", "Nullable(UInt32)", "", ""},
      {"vrtr_ifindex", "Nullable(String)", "", ""},
      {"vrtr_name", "LowCardinality(Nullable(String))", "", ""},
  };
  return schema;
}

TableSchema kafka_messages_schema() {
  TableSchema schema;
  schema.name = "raw_kafka_messages";
  schema.order_by = "(`topic`, `partition`, `offset`)";
  schema.partition_by = "toYYYYMMDD(`timestamp`)";
  schema.ttl = "";
  schema.columns = {
      {"timestamp", "DateTime64(3)", "now64()", ""},
      {"topic", "String", "", ""},
      {"partition", "UInt32", "", ""},
      {"offset", "UInt64", "", ""},
      {"key", "Nullable(String)", "", ""},
      {"value", "String", "", ""},
  };
  return schema;
}

TableSchema dead_letter_schema() {
  TableSchema schema;
  schema.name = "etl_dead_letter";
  schema.order_by = "(`pipeline`, `timestamp`)";
  schema.partition_by = "toYYYYMMDD(`timestamp`)";
  schema.columns = {
      {"timestamp", "DateTime64(3)", "now64()", ""},
      {"pipeline", "String", "", ""},
      {"processor", "String", "", ""},
      {"reason", "String", "", ""},
      {"topic", "String", "", ""},
      {"partition", "Int32", "", ""},
      {"offset", "Int64", "", ""},
      {"key", "Nullable(String)", "", ""},
      {"value", "String", "", ""},
  };
  return schema;
}

}  // namespace telekern::etl
