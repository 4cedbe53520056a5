package transfer

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/logagent/logagent/fleet"
	"github.com/twmb/franz-go/pkg/kgo"
)

// headers returns the agent's headers of r ("" for those it lacks).
func headers(r *kgo.Record) (host, path, file, offset string) {
	for _, h := range r.Headers {
		switch h.Key {
		case fleet.HeaderHost:
			host = string(h.Value)
		case fleet.HeaderPath:
			path = string(h.Value)
		case fleet.HeaderFile:
			file = string(h.Value)
		case fleet.HeaderOffset:
			offset = string(h.Value)
		}
	}
	return
}

// docID is the document id of r: the line's id <host>:<file>:<offset>,
// the same for the same line however often the agent resent it, built
// from the headers rather than taken from the key, because an agent with
// [kafka] key = path keys records with the path, which many lines share.
// A record without those headers (not from logagent) gets its Kafka
// coordinates, topic+partition+offset: still idempotent on this hop.
func docID(r *kgo.Record) string {
	host, _, file, offset := headers(r)
	if host != "" && file != "" && isDigits(offset) {
		return fleet.RecordID(host, file, offset)
	}
	return r.Topic + "+" + strconv.Itoa(int(r.Partition)) + "+" + strconv.FormatInt(r.Offset, 10)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// indexName is the daily index of a record of time t: <index>-YYYY.MM.DD
// in UTC, so that every transfer, whatever its time zone, picks the same.
func indexName(index string, t time.Time) string {
	return index + "-" + t.UTC().Format("2006.01.02")
}

// document is what is indexed for one record.
type document struct {
	Timestamp string `json:"@timestamp"`
	Message   string `json:"message"`
	Host      string `json:"host,omitempty"`
	Path      string `json:"path,omitempty"`
	File      string `json:"file,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	Topic     string `json:"topic"`
	Partition int32  `json:"kafka_partition"`
	KOffset   int64  `json:"kafka_offset"`
}

// appendBulk appends r's action and source lines to a bulk body. The
// action is "index" with an explicit _id: sent again, it replaces the same
// document instead of adding one. The message is the record's value as
// text; bytes that are not UTF-8 become U+FFFD (JSON carries text only).
func appendBulk(buf *bytes.Buffer, r *kgo.Record, index string) error {
	host, path, file, off := headers(r)
	d := document{
		Timestamp: r.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Message:   string(r.Value),
		Host:      host, Path: path, File: file,
		Topic: r.Topic, Partition: r.Partition, KOffset: r.Offset,
	}
	if n, err := strconv.ParseInt(off, 10, 64); err == nil {
		d.Offset = &n
	}
	action := struct {
		Index struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		} `json:"index"`
	}{}
	action.Index.Index = indexName(index, r.Timestamp)
	action.Index.ID = docID(r)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(action); err != nil { // Encode ends each with '\n', as _bulk wants
		return err
	}
	return enc.Encode(d)
}
