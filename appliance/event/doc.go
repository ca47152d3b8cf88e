// Package event knows what an event of the wire contract (WIRE.md, package
// causality.v1) is: its category and type, the NATS subject it is published
// on, whether it is valid, how request bodies are decoded and responses
// encoded, and how the server completes an event (id, timestamp) and
// identifies it for deduplication.
//
// The ingest path calls, per request: DecodeSingle or DecodeBatch, then per
// event Validator.Validate, Normalize, DedupKey and Subject; EncodeResponse
// writes the answer. Everything here is safe for concurrent use and allocates
// little: it runs for every event the appliance takes in.
package event
