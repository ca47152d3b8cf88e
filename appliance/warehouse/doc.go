// Package warehouse turns stored events into the Hive-partitioned Parquet lake
// described in DESIGN.md ("Warehouse (contract)").
//
// This file set is the pure, I/O-free core of the sink: the file row (row.go),
// the partition an event belongs to and its Hive path (partition.go), and the
// Parquet encoder (encode.go). The consumer, destinations, exactly-once file
// naming and compaction build on these and live beside them.
package warehouse
