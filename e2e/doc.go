// Package e2e holds the end-to-end suite: the built logagent binary run as
// an operator runs it, against a real Apache Kafka (KRaft, scripts/kafka.sh)
// and a real etcd process (scripts/etcd.sh), checked with etcdctl and
// Kafka's own console consumer.
//
// The tests skip unless LOGAGENT_E2E=1 (make e2e sets it), so that
// `go test ./...` stays fast:
//
//	LOGAGENT_E2E=1 go test -count=1 -timeout 20m ./e2e/
package e2e
