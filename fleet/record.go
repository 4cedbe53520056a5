package fleet

// Headers of every record the agent sends to Kafka. host, file and offset
// together identify a line (RecordID); path is the file's name when read.
const (
	HeaderHost   = "host"
	HeaderPath   = "path"
	HeaderOffset = "offset"
	HeaderFile   = "file"
)

// RecordID is a line's id, "<host>:<file>:<offset>": file is the id of the
// file generation the line was read from (hex), offset where the line
// starts in it (decimal, as the offset header carries it). The agent keys records with it ([kafka] key = id) and the
// transfer indexes the line under it, so a line the agent sends again is
// the same document.
func RecordID(host, file, offset string) string {
	return host + ":" + file + ":" + offset
}
