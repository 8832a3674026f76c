// Built-in table schemas: MetrANOVA's tables plus the dead-letter table.
#pragma once

#include "column_type.h"

namespace telekern::etl {

TableSchema flow_edge_schema();
TableSchema if_traffic_schema();
TableSchema if_sap_queue_schema();
TableSchema if_port_queue_schema();
TableSchema meta_if_schema();
TableSchema kafka_messages_schema();  // raw_kafka_messages by default
TableSchema dead_letter_schema();     // etl_dead_letter: rejected messages with the reason

}  // namespace telekern::etl
